"""Re-ranked retrieval recalls on 2 gloo processes (uneven shards, ragged batches) equal 1 process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.ddp import run_distributed
from tests.heads.test_retrieval_head import batches, build, evaluate

K = 3  # small: most pairs are decided by the ITM re-ranking, and its chunks are spread over both ranks


def _rank_eval(rank: int, world: int, root: str, saved: str) -> dict[str, float]:
    from vltasks.datamodules.karpathy import KarpathyData
    from vltasks.heads.retrieval import RetrievalHead

    from vltasks.backbones import ClipBackbone

    data = KarpathyData(root, {"val": "val"})
    backbone = ClipBackbone.from_pretrained(saved).eval()
    head = RetrievalHead(backbone.hidden_size, k_test=K, rerank_batch=16).eval()
    head.load_state_dict(torch.load(Path(saved) / "head.pt"))
    mine = list(range(rank, len(data.samples("val")), world))  # UnrepeatedDistributedSampler's shard
    return evaluate(
        head, backbone, batches(data, backbone, "val", [mine[i : i + 2] for i in range(0, len(mine), 2)])
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from vltasks.datamodules.synthetic.karpathy import write_karpathy

    out = tmp_path_factory.mktemp("karpathy_ddp")
    write_karpathy(out, {"train": 4, "val": 7}, seed=2)
    return out


def test_two_processes_give_the_one_process_recalls(root, tmp_path):
    data, backbone, head = build(root, k_test=K, seed=3)
    head.rerank_batch = 16
    backbone.save_pretrained(tmp_path)
    torch.save(head.state_dict(), tmp_path / "head.pt")
    one = evaluate(head, backbone, batches(data, backbone, "val", [[0, 1, 2], [3, 4, 5], [6]]))
    two = run_distributed(_rank_eval, 2, str(root), str(tmp_path))
    assert two[0] == two[1] == one
