"""Two-stage (ITC top-k -> ITM) retrieval in the metrics room: RetrievalCache and rerank_recalls.

The retrieval head's tests run them through a real backbone; here they run on plain tensors, against
ALBEF's protocol written densely (every pair's ITM score, -inf outside each query's ITC top-k).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vltasks.metrics import RetrievalCache
from vltasks.metrics.functional import rerank_recalls, retrieval_recall
from vltasks.metrics.functional.retrieval import gt_ranks, recall_from_ranks


def _items(seed: int = 0, n_img: int = 15, per: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n_img, 8, generator=g)
    text_to_image = torch.arange(n_img).repeat_interleave(per)
    txt = img[text_to_image] + 1.5 * torch.randn(n_img * per, 8, generator=g)
    return {"image_embeds": img, "text_embeds": txt, "text_to_image": text_to_image}


def _dense_two_stage(items: dict[str, torch.Tensor], itm: torch.Tensor, k: int) -> dict[str, float]:
    sim = F.normalize(items["image_embeds"], dim=-1) @ F.normalize(items["text_embeds"], dim=-1).T
    n_i, n_t = sim.shape
    i2t = torch.full_like(itm, -torch.inf).scatter(1, sim.topk(min(k, n_t), 1).indices, 0) + itm
    t2i = torch.full_like(itm.T, -torch.inf).scatter(1, sim.T.topk(min(k, n_i), 1).indices, 0) + itm.T
    ranks = gt_ranks(lambda r: i2t[r], lambda c: t2i[c], n_i, items["text_to_image"])
    return {key: float(v) for key, v in recall_from_ranks(*ranks, items["text_to_image"], n_i).items()}


@pytest.mark.parametrize("k", [2, 5, 10, 100])
def test_reranked_recalls_equal_the_dense_protocol(k: int) -> None:
    items = _items()
    itm = torch.randn(15, 45, generator=torch.Generator().manual_seed(9))
    calls = []

    def score(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        calls.append(images.numel())
        return itm[images, texts]

    got = rerank_recalls(items, score, k=k, chunk=7)
    assert max(calls) <= 7
    ref = _dense_two_stage(items, itm, k)
    ks = [key for key in ref if key[-1].isdigit() and int(key.split("_r")[1]) <= k]
    assert ks and all(got[key].item() == pytest.approx(ref[key], abs=1e-12) for key in ks)
    itc = retrieval_recall(
        F.normalize(items["image_embeds"], dim=-1) @ F.normalize(items["text_embeds"], dim=-1).T,
        items["text_to_image"],
    )
    assert {key: v.item() for key, v in itc.items()} == {
        key[4:]: v.item() for key, v in got.items() if key.startswith("itc_")
    }


def test_itc_as_the_itm_score_changes_no_rank() -> None:
    items = _items(seed=1)
    img, txt = F.normalize(items["image_embeds"], dim=-1), F.normalize(items["text_embeds"], dim=-1)
    for k in (1, 4, 50):
        got = rerank_recalls(items, lambda i, t: (img[i] * txt[t]).sum(-1), k=k)
        for key, value in got.items():
            if not key.startswith("itc_"):
                assert value.item() == pytest.approx(got[f"itc_{key}"].item(), abs=1e-6), (k, key)


def test_cache_collects_sorted_deduplicated_items() -> None:
    cache = RetrievalCache()
    assert cache.collect()["image_ids"].numel() == 0  # nothing evaluated: empty items, not an error

    def add(image_ids: list[int]) -> None:
        n = len(image_ids)
        ids = torch.tensor(image_ids, dtype=torch.float32)
        mask = torch.tensor([[1, 1, 0], [1, 1, 1]]).repeat(n, 1)
        cache.update(
            image_ids,
            ids[:, None].expand(n, 4),
            ids[:, None, None].expand(n, 2, 3),
            [i * 10 + k for i in image_ids for k in range(2)],
            [i for i in image_ids for _ in range(2)],
            ids.repeat_interleave(2)[:, None].expand(2 * n, 4),
            torch.tensor([[i * 10 + k, 7, 8] for i in image_ids for k in range(2)]),
            mask,
        )

    add([5, 2])
    add([9, 2])  # image 2 and its captions again
    items = cache.collect()
    assert items["image_ids"].tolist() == [2, 5, 9]
    assert items["image_embeds"][:, 0].tolist() == [2, 5, 9] and items["image_tokens"].shape == (3, 2, 3)
    assert items["text_ids"].tolist() == [20, 21, 50, 51, 90, 91]
    assert items["text_to_image"].tolist() == [0, 0, 1, 1, 2, 2]
    tokens = [
        items["token_ids"][s : s + n].tolist() for s, n in zip(items["starts"].tolist(), items["lengths"])
    ]
    assert tokens == [[20, 7], [21, 7, 8], [50, 7], [51, 7, 8], [90, 7], [91, 7, 8]]
    with pytest.raises(RuntimeError, match="re-rank before compute"):
        cache.compute()
    one = torch.ones(1, 2, dtype=torch.long)
    cache.update([1], torch.ones(1, 4), torch.ones(1, 2, 3), [0], [3], torch.ones(1, 4), one, one)  # image 3?
    with pytest.raises(ValueError, match="never evaluated"):
        cache.collect()
