"""Retrieval recall / mAP against a literal transcription of ALBEF's itm_eval loops."""

from __future__ import annotations

import pytest
import torch

from vltasks.metrics import ImageTextRetrieval
from vltasks.metrics.functional import retrieval_map, retrieval_recall


def _desc_stable(row: torch.Tensor) -> list[int]:
    return sorted(range(len(row)), key=lambda j: (-float(row[j]), j))


def _naive(scores: torch.Tensor, text_to_image: list[int]) -> dict[str, float]:
    """ALBEF itm_eval: best GT position per image (i2t), position of the image per text (t2i)."""
    n_img, n_txt = scores.shape
    i2t_ranks, aps = [], []
    for i in range(n_img):
        order = _desc_stable(scores[i])
        positions = sorted(order.index(t) for t in range(n_txt) if text_to_image[t] == i)
        i2t_ranks.append(positions[0])
        aps.append(sum((k + 1) / (p + 1) for k, p in enumerate(positions)) / len(positions))
    t2i_ranks = [_desc_stable(scores[:, t]).index(text_to_image[t]) for t in range(n_txt)]
    out = {}
    for k in (1, 5, 10):
        out[f"txt_r{k}"] = sum(r < k for r in i2t_ranks) / n_img
        out[f"img_r{k}"] = sum(r < k for r in t2i_ranks) / n_txt
    out["txt_r_mean"] = (out["txt_r1"] + out["txt_r5"] + out["txt_r10"]) / 3
    out["img_r_mean"] = (out["img_r1"] + out["img_r5"] + out["img_r10"]) / 3
    out["r_mean"] = (out["txt_r_mean"] + out["img_r_mean"]) / 2
    out["txt_map"] = sum(aps) / n_img
    out["img_map"] = sum(1 / (r + 1) for r in t2i_ranks) / n_txt
    out["map"] = (out["txt_map"] + out["img_map"]) / 2
    return out


def _data(seed: int = 0, n_img: int = 24, per: int = 5):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n_img, 12, generator=g)
    txt = img.repeat_interleave(per, 0) + 1.3 * torch.randn(n_img * per, 12, generator=g)
    return img, txt, torch.arange(n_img).repeat_interleave(per)


def test_recall_and_map_match_naive_loops() -> None:
    img, txt, t2i = _data()
    scores = img @ txt.T
    scores[3, :10] = scores[3, 0]  # ties: broken by index, like a stable sort
    expected = _naive(scores, t2i.tolist())
    got = {**retrieval_recall(scores, t2i), **retrieval_map(scores, t2i)}
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k].item() == pytest.approx(v, abs=1e-12), k


def test_hit_rate_not_fraction_of_relevant() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.1], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    out = retrieval_recall(scores, torch.tensor([0, 0, 0, 0, 0, 1]))
    assert out["txt_r1"].item() == 1.0  # torchmetrics' RetrievalRecall would give 0.2 for image 0


def test_class_chunks_and_separate_batches() -> None:
    img, txt, t2i = _data(seed=1)
    metric = ImageTextRetrieval(with_map=True, chunk=5)
    metric.update(text_embeds=txt[:50], text_image_ids=t2i[:50], text_ids=range(50))
    metric.update(image_embeds=img[:10], image_ids=torch.arange(10))
    metric.update(image_embeds=img[8:], image_ids=torch.arange(8, 24))  # 8, 9 twice
    metric.update(text_embeds=txt[45:], text_image_ids=t2i[45:], text_ids=range(45, 120))
    got = metric.compute()
    normed = torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).T
    expected = {**retrieval_recall(normed, t2i), **retrieval_map(normed, t2i)}
    for k, v in expected.items():
        assert got[k].item() == pytest.approx(v.item(), abs=1e-12), k


def test_unknown_image_id_is_an_error() -> None:
    metric = ImageTextRetrieval()
    metric.update(image_embeds=torch.randn(2, 4), image_ids=[1, 2])
    metric.update(text_embeds=torch.randn(1, 4), text_image_ids=[3])
    with pytest.raises(ValueError, match="never given"):
        metric.compute()
