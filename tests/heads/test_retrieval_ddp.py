"""Re-ranked retrieval recalls on 2 gloo processes (uneven shards, ragged batches) equal 1 process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.ddp import run_distributed
from tests.heads.test_retrieval_head import batches, build, evaluate
from vltasks.backbones.base import Encoded

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


class _ToyDual(torch.nn.Module):
    """Dual encoders + fusion small enough to read: fuse_pairs records which texts it was given."""

    pad_token_id = 0

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj, self.emb = torch.nn.Linear(4, 4), torch.nn.Embedding(40, 4)
        self.seen: list[torch.Tensor] = []

    def encode_image(self, pixel_values):
        tokens = self.proj(pixel_values)
        return Encoded(tokens.mean(1), tokens)

    def encode_text(self, ids, mask):
        tokens = self.emb(ids)
        return Encoded((tokens * mask[..., None]).sum(1), tokens)

    def fuse_pairs(self, image_tokens, text_tokens, ids, mask):
        self.seen = [ids.clone(), mask.clone()]
        return torch.cat([image_tokens.mean(1), (text_tokens * mask[..., None]).sum(1)], -1)


def _rank_negatives(rank: int, world: int, mode: str) -> dict:
    from vltasks.heads.retrieval import RetrievalHead

    backbone, head = _ToyDual(), RetrievalHead(8, hard_negatives=mode)
    width = 3 if rank == 0 else 5  # ragged text across ranks
    ids = torch.arange(2 * width).view(2, width) + 10 * (rank + 1)
    batch = {
        "pixel_values": torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(rank)),
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "imgid": torch.tensor([100 + rank] * 2),  # both local captions describe one image
    }
    out = head.run(backbone, batch)
    loss = head.loss(out, batch)
    loss.backward()
    ids_seen, mask_seen = backbone.seen
    return {
        "labels": out["itm_labels"].tolist(),
        "ids": ids_seen.tolist(),
        "mask": mask_seen.tolist(),
        "loss": float(loss),
        "emb_grad": float(backbone.emb.weight.grad.abs().sum()),
    }


def test_global_hard_negatives_come_from_the_other_process():
    """Each rank's batch is two captions of one image: locally there is no negative to draw (ALBEF
    draws none), globally every negative is the other rank's (BLIP), its text padded to fit."""
    local = run_distributed(_rank_negatives, 2, "local")
    assert all(r["labels"] == [1, 1] for r in local)
    glob = run_distributed(_rank_negatives, 2, "global")
    for rank, r in enumerate(glob):
        other = 10 * (2 - rank)  # the other rank's ids start at 10 or 20
        assert r["labels"] == [1, 1, 0, 0, 0, 0]
        assert all(len(row) == 5 for row in r["ids"])  # padded to the widest rank
        negatives = r["ids"][2:4]
        assert all(other <= row[0] < other + 10 for row in negatives), r["ids"]
        own = [row for i, row in enumerate(r["ids"]) if i not in (2, 3)]
        assert all(10 * (rank + 1) <= row[0] < 10 * (rank + 2) for row in own)
        if rank == 0:  # width 3 padded to 5: pad id 0, mask 0
            assert r["ids"][0][3:] == [0, 0] and r["mask"][0] == [1, 1, 1, 0, 0]
        assert r["loss"] == r["loss"] and r["emb_grad"] > 0  # finite, and gradients flowed
