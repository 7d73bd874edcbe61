"""One small deterministic data set per metric class, shared by the batch and DDP harnesses.

A case is `(factory, samples, update)`: `samples` is a list of per-sample items, `update(metric,
items, ids)` feeds a batch of them. Everything is built from fixed seeds so every process sees the
same data.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

import vltasks.metrics as M
from vltasks.metrics.functional import rerank_recalls


def fake_meteor(preds: list[str], refs: list[list[str]]) -> list[float]:
    """A deterministic stand-in for per-sentence METEOR: token overlap with the references."""
    out = []
    for p, rs in zip(preds, refs):
        words, ref_words = set(p.split()), {w for r in rs for w in r.split()}
        out.append(len(words & ref_words) / max(len(words), 1) * 0.4)
    return out


def _vqa():
    rng = random.Random(0)
    pool = ["yes", "no", "2", "two", "red car", "the red car", "blue"]
    items = []
    for i in range(23):
        main = rng.choice(pool)
        answers = [main if rng.random() < 0.6 else rng.choice(pool) for _ in range(10)]
        items.append((rng.choice(pool), answers, ["yes/no", "number", "other"][i % 3]))

    def update(m, items, ids):
        m.update(
            [p for p, _, _ in items], [a for _, a, _ in items], ids=ids, answer_types=[t for *_, t in items]
        )

    return lambda: M.VQAAccuracy(by_answer_type=True), items, update


def _embedding_pairs(seed: int, n: int, sentences: Callable[[int], int], noise: float = 1.2) -> list:
    """(item embedding, its captions' embeddings) per sample: captions are noisy copies of the item."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        item = torch.randn(8, generator=g)
        items.append((item, item + noise * torch.randn(sentences(i), 8, generator=g)))
    return items


def _retrieval_update(item: str) -> Callable:
    """Feeds `_embedding_pairs` to ImageTextRetrieval (item "image") or VideoTextRetrieval ("video")."""

    def update(m, items, ids):
        owner = [i for i, (_, t) in zip(ids, items) for _ in range(len(t))]
        m.update(
            **{f"{item}_embeds": torch.stack([e for e, _ in items]), f"{item}_ids": ids},
            text_embeds=torch.cat([t for _, t in items]),
            **{f"text_{item}_ids": owner},
            text_ids=[i * 10 + k for i, (_, t) in zip(ids, items) for k in range(len(t))],
        )

    return update


def _retrieval():
    items = _embedding_pairs(1, 13, lambda i: 3)
    return lambda: M.ImageTextRetrieval(with_map=True, chunk=4), items, _retrieval_update("image")


def _video_retrieval():
    """MSVD-like: 1 to 3 sentences per video (CLIP4Clip's multi-sentence path)."""
    items = _embedding_pairs(12, 14, lambda i: 1 + i % 3, noise=3.0)  # MdR above 1
    return lambda: M.VideoTextRetrieval(chunk=4), items, _retrieval_update("video")


class _RerankedCache(M.RetrievalCache):
    """The retrieval head's epoch end: gather once, re-rank the ITC top-4 with a stand-in ITM score."""

    def compute(self) -> dict[str, torch.Tensor]:
        with self.sync_context():
            items = self.collect()

        def itm(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:  # uses tokens and token ids
            first_token = items["token_ids"][items["starts"][texts]].float()
            last_token = items["token_ids"][items["starts"][texts] + items["lengths"][texts] - 1].float()
            return torch.cos(items["image_tokens"][images].sum((1, 2)) * first_token + last_token)

        return rerank_recalls(items, itm, k=4, chunk=5)


def _reranked():
    g = torch.Generator().manual_seed(13)
    items = []
    for item, texts in _embedding_pairs(13, 11, lambda i: 1 + i % 3):
        lengths = torch.randint(2, 6, (len(texts), 1), generator=g)
        input_ids = torch.randint(1, 50, (len(texts), 5), generator=g)
        items.append((item, torch.randn(2, 3, generator=g), texts, input_ids, torch.arange(5) < lengths))

    def update(m, it, ids):
        counts = [len(t) for _, _, t, _, _ in it]
        m.update(
            ids,
            torch.stack([e for e, *_ in it]),
            torch.stack([tok for _, tok, *_ in it]),
            [i * 10 + k for i, c in zip(ids, counts) for k in range(c)],
            [i for i, c in zip(ids, counts) for _ in range(c)],
            torch.cat([t for _, _, t, _, _ in it]),
            torch.cat([x for *_, x, _ in it]),
            torch.cat([mask for *_, mask in it]),
        )

    return _RerankedCache, items, update


def _boxes():
    g = torch.Generator().manual_seed(2)
    gt = torch.rand(17, 2, generator=g) * 50
    gt = torch.cat([gt, gt + 10 + torch.rand(17, 2, generator=g) * 20], 1)
    pred = gt + torch.randn(17, 4, generator=g) * 6
    items = list(zip(pred, gt))
    return (
        lambda: M.GroundingAccuracy(),
        items,
        lambda m, it, ids: m.update(
            torch.stack([p for p, _ in it]), torch.stack([t for _, t in it]), ids=ids
        ),
    )


def _boxes_by_group():
    """RefCOCO's testA / testB in one pass: a group name per sample."""
    _, pairs, _ = _boxes()
    items = [(p, t, ("testA", "testB")[i % 3 == 0]) for i, (p, t) in enumerate(pairs)]
    return (
        lambda: M.GroundingAccuracy(groups=("testA", "testB")),
        items,
        lambda m, it, ids: m.update(
            torch.stack([p for p, _, _ in it]),
            torch.stack([t for _, t, _ in it]),
            ids=ids,
            groups=[g for *_, g in it],
        ),
    )


def _masks():
    g = torch.Generator().manual_seed(3)
    items = [(torch.rand(6, 7, generator=g) > 0.5, torch.rand(6, 7, generator=g) > 0.4) for _ in range(11)]
    items.append((torch.zeros(6, 7, dtype=torch.bool), torch.zeros(6, 7, dtype=torch.bool)))
    return (
        lambda: M.MaskIoU(),
        items,
        lambda m, it, ids: m.update([p for p, _ in it], [t for _, t in it], ids=ids),
    )


def _densecap():
    g = torch.Generator().manual_seed(4)
    words = "man dog red shirt tree sky white car".split()
    rng = random.Random(4)
    items = []
    for _ in range(9):
        n_gt = rng.randint(1, 5)
        xy = torch.rand(n_gt, 2, generator=g) * 80
        gt_boxes = torch.cat([xy, xy + 10 + torch.rand(n_gt, 2, generator=g) * 30], 1).round()
        gt_caps = [" ".join(rng.sample(words, 3)) for _ in range(n_gt)]
        n_det = rng.randint(0, 6)
        idx = torch.randint(0, n_gt, (n_det,), generator=g)
        boxes = gt_boxes[idx] + torch.randn(n_det, 4, generator=g) * 5
        caps = [" ".join(rng.sample(words, 3)) for _ in range(n_det)]
        pred = {"boxes": boxes, "scores": torch.rand(n_det, generator=g), "captions": caps}
        items.append((pred, {"boxes": gt_boxes, "captions": gt_caps}))
    return (
        lambda: M.DenseCapMAP(meteor=fake_meteor),
        items,
        lambda m, it, ids: m.update([p for p, _ in it], [t for _, t in it], ids=ids),
    )


def _vcr():
    g = torch.Generator().manual_seed(5)
    items = [
        (torch.randn(4, generator=g), i % 4, torch.randn(4, generator=g), (i * 3) % 4) for i in range(15)
    ]

    def update(m, it, ids):
        m.update(
            torch.stack([a for a, *_ in it]),
            torch.tensor([b for _, b, _, _ in it]),
            torch.stack([c for *_, c, _ in it]),
            torch.tensor([d for *_, d in it]),
            ids=ids,
        )

    return lambda: M.VCRAccuracy(), items, update


def _multiple_choice():
    items = [("A cat", "a cat"), ("dog", "a dog"), ("two", "Two "), ("red", "blue")] * 3
    return (
        lambda: M.MultipleChoiceAccuracy(),
        items,
        lambda m, it, ids: m.update([p for p, _ in it], [t for _, t in it], ids=ids),
    )


def _entailment():
    g = torch.Generator().manual_seed(6)
    items = [(torch.randn(3, generator=g), i % 3) for i in range(14)]
    return (
        lambda: M.EntailmentAccuracy(),
        items,
        lambda m, it, ids: m.update(
            torch.stack([p for p, _ in it]), torch.tensor([t for _, t in it]), ids=ids
        ),
    )


def _visdial():
    g = torch.Generator().manual_seed(7)
    items = []
    for i in range(12):
        rel = torch.zeros(100)
        if i % 2 == 0:
            rel[torch.randint(0, 100, (6,), generator=g)] = torch.tensor([1.0, 0.5, 0.5, 1.0, 0.25, 0.75])
        items.append((torch.randn(100, generator=g), i * 7 % 100, rel))

    def update(m, it, ids):
        m.update(torch.stack([s for s, _, _ in it]), torch.tensor([t for _, t, _ in it]),
                 torch.stack([r for *_, r in it]), ids=ids)  # fmt: skip

    return lambda: M.VisDialMetrics(), items, update


def _strings(factory: Callable):
    items = [("Coca Cola", ["CocaCola", "coke"]), ("3.5%", ["0.035"]), ("the Cat", ["cat"]),
             ("10", ["10.4"]), ("blue sky", ["the blue sky", "sky"]), ("x", ["y"])] * 2  # fmt: skip
    return factory, items, lambda m, it, ids: m.update([p for p, _ in it], [a for _, a in it], ids=ids)


def _temporal():
    g = torch.Generator().manual_seed(8)
    gt = torch.rand(13, 1, generator=g) * 20
    gt = torch.cat([gt, gt + 2 + torch.rand(13, 1, generator=g) * 10], 1)
    pred = gt[:, None, :] + torch.randn(13, 5, 2, generator=g) * 2
    items = list(zip(pred, gt))
    return (
        lambda: M.TemporalGroundingRecall(),
        items,
        lambda m, it, ids: m.update(
            torch.stack([p for p, _ in it]), torch.stack([t for _, t in it]), ids=ids
        ),
    )


def _moments():
    g = torch.Generator().manual_seed(9)
    items = []
    for i in range(11):
        n_gt = 1 + i % 3
        start = torch.rand(n_gt, 1, generator=g) * 100
        gt = torch.cat([start, start + torch.tensor([4.0, 20.0, 60.0])[i % 3]], 1).double()
        pred = gt[torch.randint(0, n_gt, (7,), generator=g)] + torch.randn(7, 2, generator=g).double() * 3
        items.append((pred, torch.rand(7, generator=g).double(), gt))
    return (
        lambda: M.MomentRetrievalMetrics(),
        items,
        lambda m, it, ids: m.update(
            [p for p, _, _ in it], [s for _, s, _ in it], [t for *_, t in it], ids=ids
        ),
    )


def _highlights():
    """Clip scores with ties, predictions one clip short or long, clips no annotator liked."""
    g = torch.Generator().manual_seed(10)
    items = []
    for i in range(12):
        n_clips = 5 + i % 6
        gt = torch.randint(0, 5, (n_clips, 3), generator=g).double() * (
            torch.rand(n_clips, 1, generator=g) > 0.3
        )
        pred = (torch.rand(n_clips + (i % 3) - 1, generator=g) * 5).round() / 5
        items.append((pred.double(), gt))
    return (
        lambda: M.HighlightDetectionMetrics(),
        items,
        lambda m, it, ids: m.update([p for p, _ in it], [t for _, t in it], ids=ids),
    )


def _didemo():
    """Four annotators (one query with seven) that often agree; all 21 moments ranked at random."""
    rng = random.Random(11)
    moments = [(s, e) for s in range(6) for e in range(s, 6)]
    items = []
    for i in range(13):
        main = rng.choice(moments)
        times = [main if rng.random() < 0.6 else rng.choice(moments) for _ in range(7 if i == 4 else 4)]
        ranked = sorted(moments, key=lambda m: -(rng.random() + (m == main) * rng.random()))
        items.append((ranked, times))
    return (
        lambda: M.DiDeMoMoments(),
        items,
        lambda m, it, ids: m.update([r for r, _ in it], [t for _, t in it], ids=ids),
    )


def _video_qa_exact():
    """One answer per question (MSRVTT-QA style), question types of the dataset's own naming."""
    rng = random.Random(13)
    pool = ["dog", "two", "red", "left", "cat"]
    items = [(rng.choice(pool), [rng.choice(pool)], ["what", "how", "who"][i % 3]) for i in range(17)]

    def update(m, items, ids):
        m.update(
            [p for p, _, _ in items], [a for _, a, _ in items], ids=ids, answer_types=[t for *_, t in items]
        )

    return (
        lambda: M.VQAAccuracy(
            protocol="exact",
            by_answer_type=True,
            type_names=("what", "how", "who"),
            type_groups={"free": ("how", "who")},
        ),
        items,
        update,
    )


def _nextqa():
    """Five candidates; every NExT-QA type, TP and TN both present (the official TN counts TP)."""
    g = torch.Generator().manual_seed(14)
    types = ["CW", "CH", "TN", "TC", "TP", "DL", "DC", "DO"]
    items = [(torch.randn(5, generator=g), (i * 2) % 5, types[i % 8]) for i in range(19)]

    def update(m, it, ids):
        m.update(torch.stack([s for s, _, _ in it]), torch.tensor([t for _, t, _ in it]),
                 [q for *_, q in it], ids=ids)  # fmt: skip

    return lambda: M.NExTQAAccuracy(), items, update


def _counts():
    """Raw regressed counts (some below 1, above 10, on .5) against answers 1..10."""
    g = torch.Generator().manual_seed(15)
    items = [(float(torch.randn(1, generator=g) * 4 + 4), 1 + i % 10) for i in range(16)]
    items[3] = (2.5, 2)  # half to even: 2
    return (
        lambda: M.CountMSE(),
        items,
        lambda m, it, ids: m.update(
            torch.tensor([p for p, _ in it]), torch.tensor([t for _, t in it]), ids=ids
        ),
    )


CASES: dict[str, Callable] = {
    "VQAAccuracy": _vqa,
    "VQAAccuracy[exact]": _video_qa_exact,
    "NExTQAAccuracy": _nextqa,
    "CountMSE": _counts,
    "ImageTextRetrieval": _retrieval,
    "VideoTextRetrieval": _video_retrieval,
    "RetrievalCache": _reranked,
    "GroundingAccuracy": _boxes,
    "GroundingAccuracy[groups]": _boxes_by_group,
    "MaskIoU": _masks,
    "DenseCapMAP": _densecap,
    "VCRAccuracy": _vcr,
    "MultipleChoiceAccuracy": _multiple_choice,
    "EntailmentAccuracy": _entailment,
    "VisDialMetrics": _visdial,
    "ANLS": lambda: _strings(lambda: M.ANLS()),
    "ExactMatch": lambda: _strings(lambda: M.ExactMatch()),
    "TokenF1": lambda: _strings(lambda: M.TokenF1()),
    "RelaxedAccuracy": lambda: _strings(lambda: M.RelaxedAccuracy()),
    "TemporalGroundingRecall": _temporal,
    "MomentRetrievalMetrics": _moments,
    "HighlightDetectionMetrics": _highlights,
    "DiDeMoMoments": _didemo,
}


def as_floats(value) -> dict[str, float]:
    if isinstance(value, dict):
        return {k: float(v) for k, v in value.items()}
    return {"value": float(value)}


def run_case(name: str, indices: list[int], batch: int = 4) -> dict[str, float]:
    """compute() after updating with the samples at `indices` (ids = sample index) in batches."""
    factory, items, update = CASES[name]()
    metric = factory()
    for start in range(0, len(indices), batch):
        chunk = indices[start : start + batch]
        update(metric, [items[i] for i in chunk], chunk)
    return as_floats(metric.compute())
