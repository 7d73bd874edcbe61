"""The cost of two-stage retrieval evaluation (ITC top-k, then ITM re-ranking) as k and the gallery
grow, against a per-query loop like LAVIS's on the same model.

    .venv/bin/python benchmarks/bench_retrieval_eval.py [--images 100 200 400] [--k 8 16 32] [--quick]

The model is the retrieval demo's (tiny CLIP with a 2-layer fusion block, random weights: the cost of a
forward does not depend on what the weights learned). The gallery is N images with 5 captions each:
vision tokens and ITC embeddings drawn at random (each caption's embedding near its image's, so ITC
finds it and the recalls are not all zero), captions of 8-16 random words tokenized by the backbone's
tokenizer. Ours is the head's `on_eval_epoch_end` on a filled `RetrievalCache`, as validation runs it:
the union of both directions' top-k pairs, each scored once, in chunks of ``rerank_batch`` pairs,
each distinct caption encoded once per chunk. The loop is LAVIS's `compute_sim_matrix` (ALBEF/BLIP
retrieval) on our model: an N x 5N score matrix filled with -100; per image, ITM on its top-k captions
(one forward of k pairs); per caption, ITM on its top-k images (one forward of k pairs, the caption
encoded once); recalls from the matrices. Both add the same ITC term (`RetrievalHead.final_score`).

ITM cost is linear in the pairs scored, at most k x (N + 5N); the printed ``us / (k x N)`` column
should stay flat as both grow (the ITC stage, an N x 5N product of 64-wide embeddings, is quadratic in
N but tiny at these sizes). Single-threaded timings are best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vltasks.heads import HEADS  # noqa: E402

from vltasks.backbones import build_backbone  # noqa: E402

CAPTIONS = 5
WORDS = [f"{a}{b}" for a in "bcdfghklmnprst" for b in ("a", "e", "i", "o", "u", "an", "en", "on")]
BACKBONE = {  # configs/retrieval_demo.yaml
    "name": "clip",
    "preset": "clip_tiny",
    "preset_args": {"patch_size": 16},
    "fusion": {"layers": 2, "heads": 4},
}


def build(k: int) -> tuple[Any, Any]:
    """The retrieval demo's backbone and head, random weights, in eval mode."""
    rng = random.Random(0)
    texts = [" ".join(rng.choices(WORDS, k=12)) for _ in range(500)]
    backbone = build_backbone(BACKBONE, texts=lambda: texts, needs={"dual", "fusion"})
    cls = HEADS.get("retrieval")
    head = cls(backbone.hidden_size, **cls.backbone_args(backbone), k_test=k, itc_weight=1.0)
    return backbone.eval(), head.eval()


def gallery(backbone: Any, n: int, seed: int = 0) -> dict[str, Any]:
    """N images and 5N captions in the shapes the head caches (`RetrievalCache.update`)."""
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    with torch.no_grad():
        embeds, tokens = backbone.encode_image(torch.zeros(1, 3, 64, 64))
    img_embeds = torch.randn(n, embeds.shape[1], generator=g)
    img_tokens = torch.randn(n, *tokens.shape[1:], generator=g)
    owner = torch.arange(n).repeat_interleave(CAPTIONS)
    txt_embeds = img_embeds[owner] + 4.0 * torch.randn(n * CAPTIONS, embeds.shape[1], generator=g)
    text = backbone.processor.text(
        [" ".join(rng.choices(WORDS, k=rng.randint(8, 16))) for _ in range(n * CAPTIONS)]
    )
    return {
        "image_ids": torch.arange(n),
        "image_embeds": img_embeds,
        "image_tokens": img_tokens,
        "text_ids": torch.arange(n * CAPTIONS),
        "text_image_ids": owner,
        "text_embeds": txt_embeds,
        "input_ids": text["input_ids"],
        "attention_mask": text["attention_mask"],
    }


@torch.no_grad()
def ours(backbone: Any, head: Any, data: dict[str, Any]) -> dict[str, float]:
    """The head's evaluation end on a cache filled in batches of 50 images, as validation fills it."""
    metrics = head.metrics()
    cache = metrics["retrieval"]
    n = data["image_ids"].numel()
    for start in range(0, n, 50):
        imgs = slice(start, min(start + 50, n))
        txts = slice(start * CAPTIONS, imgs.stop * CAPTIONS)
        cache.update(
            data["image_ids"][imgs],
            data["image_embeds"][imgs],
            data["image_tokens"][imgs],
            data["text_ids"][txts],
            data["text_image_ids"][txts],
            data["text_embeds"][txts],
            data["input_ids"][txts],
            data["attention_mask"][txts],
        )
    head.on_eval_epoch_end(backbone, metrics, "val")
    return {key: float(value) for key, value in cache.compute().items() if not key.startswith("itc_")}


@torch.no_grad()
def per_query_loop(backbone: Any, head: Any, data: dict[str, Any]) -> dict[str, float]:
    """LAVIS's `compute_sim_matrix` on our model: one ITM forward of k pairs per query, both ways."""
    k = head.k_test
    img = F.normalize(data["image_embeds"], dim=-1)
    txt = F.normalize(data["text_embeds"], dim=-1)
    sims = img @ txt.T
    n_img, n_txt = sims.shape
    ids, mask, tokens = data["input_ids"], data["attention_mask"], data["image_tokens"]
    i2t = torch.full((n_img, n_txt), -100.0)
    for i in range(n_img):
        top_sim, top = sims[i].topk(min(k, n_txt))
        itm = head.match_score(backbone, tokens[i : i + 1].expand(len(top), -1, -1), ids[top], mask[top])
        i2t[i, top] = head.final_score(itm, top_sim)
    t2i = torch.full((n_txt, n_img), -100.0)
    for t in range(n_txt):
        top_sim, top = sims[:, t].topk(min(k, n_img))
        text_tokens = backbone.encode_text(ids[t : t + 1], mask[t : t + 1]).tokens.expand(len(top), -1, -1)
        rep_ids, rep_mask = ids[t : t + 1].expand(len(top), -1), mask[t : t + 1].expand(len(top), -1)
        itm = head.match_score(backbone, tokens[top], rep_ids, rep_mask, text_tokens)
        t2i[t, top] = head.final_score(itm, top_sim)
    return lavis_recalls(i2t, t2i, data["text_image_ids"])


def lavis_recalls(i2t: torch.Tensor, t2i: torch.Tensor, owner: torch.Tensor) -> dict[str, float]:
    """R@1/5/10 as LAVIS's `_report_metrics` ranks: an image by the best position of its captions, a
    caption by the position of its image, positions from a descending sort of the score row."""
    order_i2t = i2t.argsort(dim=1, descending=True, stable=True)
    mine = owner[order_i2t] == torch.arange(i2t.shape[0])[:, None]
    rank_i = mine.float().argmax(dim=1)
    order_t2i = t2i.argsort(dim=1, descending=True, stable=True)
    rank_t = (order_t2i == owner[:, None]).float().argmax(dim=1)
    out = {}
    for name, ranks in (("txt", rank_i), ("img", rank_t)):
        for r in (1, 5, 10):
            out[f"{name}_r{r}"] = float((ranks < r).double().mean())
    return out


def pairs_scored(data: dict[str, Any], k: int) -> int:
    """Distinct (image, caption) pairs in the union of both directions' ITC top-k: what ours scores."""
    img = F.normalize(data["image_embeds"], dim=-1)
    txt = F.normalize(data["text_embeds"], dim=-1)
    sims = img @ txt.T
    n_img, n_txt = sims.shape
    top_t = sims.topk(min(k, n_txt), dim=1).indices  # [n_img, k] captions per image
    top_i = sims.T.topk(min(k, n_img), dim=1).indices  # [n_txt, k] images per caption
    keys = torch.cat(
        [
            (top_t * n_img + torch.arange(n_img)[:, None]).flatten(),
            (torch.arange(n_txt)[:, None] * n_img + top_i).flatten(),
        ]
    )
    return int(keys.unique().numel())


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, nargs="+", default=[100, 200, 400], help="gallery sizes N")
    p.add_argument("--k", type=int, nargs="+", default=[8, 16, 32], help="re-ranked candidates per query")
    p.add_argument("--repeat", type=int, default=2, help="best of this many runs of each")
    p.add_argument("--no-loop", action="store_true", help="time ours only (the loop is the slow part)")
    p.add_argument("--quick", action="store_true", help="N in (40, 80), k in (4, 8), one run each")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.k, args.repeat = [40, 80], [4, 8], 1
    torch.set_num_threads(1)
    backbone, head = build(max(args.k))
    base: float | None = None
    print(f"gallery: N images x {CAPTIONS} captions; ITM pairs at most k x 6N; best of {args.repeat}")
    print("    N    k   pairs | ours (s)  us/pair  us/(kxN)  vs first |  loop (s)  loop/ours | R@r<=k equal")
    for n in args.images:
        data = gallery(backbone, n)
        for k in args.k:
            head.k_test = k
            t_ours, r_ours = best(partial(ours, backbone, head, data), args.repeat)
            per = 1e6 * t_ours / (k * n)
            base = base or per
            pairs = pairs_scored(data, k)
            row = (
                f"{n:5d} {k:4d} {pairs:7d} | {t_ours:8.3f} {1e6 * t_ours / pairs:8.1f}  {per:8.1f}"
                f"  {per / base:8.2f} |"
            )
            if args.no_loop:
                print(row)
                continue
            t_loop, r_loop = best(partial(per_query_loop, backbone, head, data), args.repeat)
            # beyond the k re-scored, LAVIS orders by index among -100s and we by ITC: compare R@r <= k
            same = all(abs(r_ours[key] - r_loop[key]) < 1e-9 for key in r_loop if int(key[5:]) <= k)
            print(f"{row}  {t_loop:8.3f}  {t_loop / t_ours:9.2f} | {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
