"""Image-text retrieval recall and mAP as ALBEF / BLIP / LAVIS report them (COCO 5k, Flickr30k 1k).

i2t: the rank of an image is the best position of any of its GT captions; t2i: each caption has one
image. R@K is a hit rate (rank < K), not torchmetrics' fraction of relevant items found.
Ranks come from a descending sort with ties broken by index (a stable sort), computed in blocks of
rows so a 5k x 25k similarity never has to be held in memory at once.

Video-text retrieval (CLIP4Clip's metrics.py: MSR-VTT, MSVD, DiDeMo) adds the median and mean rank
(MdR, MnR; 1-based, lower is better). Its t2v rank is the t2i rank above; its v2t rank differs from
i2t when a video has several sentences: CLIP4Clip scores each video's sentence group by its best
sentence (`tensor_video_to_text_sim`) and ranks the query video's own group among the groups.
CLIP4Clip ranks with `np.where(sort(-x) == -diag)` (a tie with the ground truth yields extra
entries); here ties follow the stable sort like every rank in this file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

BlockFn = Callable[[Tensor], Tensor]  # row indices -> scores of those rows against all columns


def _rank_in_rows(rows: Tensor, cols: Tensor) -> Tensor:
    """0-based position of column cols[r] in the descending stable sort of rows[r]."""
    target = rows.gather(1, cols[:, None])
    rank = (rows > target).sum(1)
    tied = (rows == target).sum(1) > 1  # rare: only then is the index order needed
    if bool(tied.any()):
        index = torch.arange(rows.shape[1], device=rows.device)
        before = (rows[tied] == target[tied]) & (index[None, :] < cols[tied, None])
        rank[tied] += before.sum(1)
    return rank


def _query_ranks(block: BlockFn, targets: Tensor, chunk: int) -> Tensor:
    """Rank of column targets[q] in row q of `block`, rows scored `chunk` at a time."""
    ranks = torch.zeros(targets.numel(), dtype=torch.long, device=targets.device)
    for start in range(0, targets.numel(), chunk):
        idx = torch.arange(start, min(start + chunk, targets.numel()), device=targets.device)
        ranks[idx] = _rank_in_rows(block(idx), targets[idx])
    return ranks


def _checked(text_to_image: Tensor, n_images: int, what: str = "images") -> Tensor:
    """Int64 owner index per caption; an index outside the gallery would silently gather garbage."""
    text_to_image = text_to_image.long()
    if text_to_image.numel() and (int(text_to_image.min()) < 0 or int(text_to_image.max()) >= n_images):
        raise ValueError(f"text_to_{what[:-1]} must index the {n_images} {what}")
    return text_to_image


def gt_ranks(
    image_block: BlockFn, text_block: BlockFn, n_images: int, text_to_image: Tensor, chunk: int = 256
) -> tuple[Tensor, Tensor]:
    """(rank of each caption in its image's i2t row, rank of its image in the caption's t2i row)."""
    text_to_image = _checked(text_to_image, n_images)
    n_texts = text_to_image.numel()
    device = text_to_image.device
    order = torch.argsort(text_to_image, stable=True)
    bounds = torch.searchsorted(text_to_image[order], torch.arange(0, n_images + chunk, chunk, device=device))
    i2t = torch.zeros(n_texts, dtype=torch.long, device=device)
    for c, start in enumerate(range(0, n_images, chunk)):
        texts = order[bounds[c] : bounds[c + 1]]
        if texts.numel():
            rows = image_block(torch.arange(start, min(start + chunk, n_images), device=device))
            for sub in texts.split(chunk):  # one row per caption: bounded by chunk x n_texts
                i2t[sub] = _rank_in_rows(rows[text_to_image[sub] - start], sub)
    return i2t, _query_ranks(text_block, text_to_image, chunk)


def _image_ranks(i2t: Tensor, text_to_image: Tensor, n_images: int) -> Tensor:
    """Best rank of any GT caption per image; an image without captions never counts as a hit."""
    best = torch.full((n_images,), torch.iinfo(torch.long).max, dtype=torch.long, device=i2t.device)
    return best.scatter_reduce(0, text_to_image.long(), i2t, reduce="amin")


def recall_from_ranks(
    i2t: Tensor, t2i: Tensor, text_to_image: Tensor, n_images: int, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Tensor]:
    image_rank = _image_ranks(i2t, text_to_image, n_images)
    out: dict[str, Tensor] = {}
    for k in ks:
        out[f"txt_r{k}"] = (image_rank < k).double().mean()
    for k in ks:
        out[f"img_r{k}"] = (t2i < k).double().mean()
    out["txt_r_mean"] = torch.stack([out[f"txt_r{k}"] for k in ks]).mean()
    out["img_r_mean"] = torch.stack([out[f"img_r{k}"] for k in ks]).mean()
    out["r_mean"] = (out["txt_r_mean"] + out["img_r_mean"]) / 2
    return out


def map_from_ranks(i2t: Tensor, t2i: Tensor, text_to_image: Tensor, n_images: int) -> dict[str, Tensor]:
    """Per query AP = mean over its GTs of (GTs found so far) / (1-based rank); mean over queries."""
    img = text_to_image.long()
    key = img * (i2t.max() + 1 if i2t.numel() else 1) + i2t
    order = torch.argsort(key)
    img_sorted, rank_sorted = img[order], i2t[order]
    counts = torch.bincount(img, minlength=n_images)
    starts = torch.cumsum(counts, 0) - counts
    found = torch.arange(img.numel(), device=img.device) - starts[img_sorted] + 1
    precision = found.double() / (rank_sorted + 1).double()
    ap_sum = torch.zeros(n_images, dtype=torch.float64, device=img.device).index_add_(
        0, img_sorted, precision
    )
    image_ap = torch.where(counts > 0, ap_sum / counts.clamp(min=1), torch.zeros_like(ap_sum))
    txt_map, img_map = image_ap.mean(), (1.0 / (t2i + 1).double()).mean()
    return {"txt_map": txt_map, "img_map": img_map, "map": (txt_map + img_map) / 2}


def _dense(scores: Tensor, text_to_image: Tensor) -> tuple[BlockFn, BlockFn, Tensor]:
    if scores.ndim != 2 or scores.shape[1] != text_to_image.numel():
        raise ValueError(f"scores must be [n_images, n_texts]; got {tuple(scores.shape)} for "
                         f"{text_to_image.numel()} texts")  # fmt: skip
    t2i_img = torch.as_tensor(text_to_image, device=scores.device).long()
    return (lambda rows: scores[rows]), (lambda cols: scores[:, cols].T), t2i_img


def retrieval_recall(
    scores: Tensor, text_to_image: Tensor, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Tensor]:
    """Hit-rate recall both ways from scores[n_images, n_texts]; keys txt_r{k}, img_r{k}, means, r_mean."""
    image_block, text_block, t2img = _dense(scores, torch.as_tensor(text_to_image))
    i2t, t2i = gt_ranks(image_block, text_block, scores.shape[0], t2img)
    return recall_from_ranks(i2t, t2i, t2img, scores.shape[0], ks)


def retrieval_map(scores: Tensor, text_to_image: Tensor) -> dict[str, Tensor]:
    """mAP both ways: i2t over all GT captions of each image (txt_map), t2i (img_map), their mean."""
    image_block, text_block, t2img = _dense(scores, torch.as_tensor(text_to_image))
    i2t, t2i = gt_ranks(image_block, text_block, scores.shape[0], t2img)
    return map_from_ranks(i2t, t2i, t2img, scores.shape[0])


def group_max(scores: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """scores [b, n_texts] -> [b, n_groups]: each group's best score (-inf for a group without texts)."""
    out = torch.full((scores.shape[0], n_groups), float("-inf"), dtype=scores.dtype, device=scores.device)
    return out.scatter_reduce(1, groups[None, :].expand_as(scores), scores, reduce="amax")


def video_ranks(
    video_block: BlockFn, text_block: BlockFn, n_videos: int, text_to_video: Tensor, chunk: int = 256
) -> tuple[Tensor, Tensor]:
    """0-based (v2t rank of each video's sentence group, t2v rank of each sentence's video).

    v2t ranks the groups of every video's sentences by their best sentence's score (CLIP4Clip's
    multi-sentence rule; with one sentence per video it is the transposed t2v matrix). Ties: a
    stable descending sort, so among equal scores the lower video index ranks first.
    """
    text_to_video = _checked(text_to_video, n_videos, "videos")
    if bool((torch.bincount(text_to_video, minlength=n_videos) == 0).any()):
        raise ValueError("video retrieval needs at least one sentence for every video")
    videos = torch.arange(n_videos, device=text_to_video.device)
    v2t = _query_ranks(lambda rows: group_max(video_block(rows), text_to_video, n_videos), videos, chunk)
    return v2t, _query_ranks(text_block, text_to_video, chunk)


def _rank_summary(ranks: Tensor, ks: Sequence[int], prefix: str, torch_median: bool) -> dict[str, Tensor]:
    """R@k hit rates, MdR and MnR (1-based) from 0-based ranks, as CLIP4Clip's two code paths write them.

    `compute_metrics`: `np.median(ind) + 1` (mean of the two middle ranks for an even count) and
    `np.mean(ind) + 1`; multi-sentence t2v (`tensor_text_to_video_metrics`, `torch_median=True`):
    `torch.median(ranks + 1)` (the lower middle rank) and `np.mean(ranks + 1)`.
    """
    out = {f"{prefix}_r{k}": (ranks < k).double().mean() for k in ks}
    ordered = torch.sort(ranks).values.double()
    n = ordered.numel()
    if torch_median:
        out[f"{prefix}_mdr"] = ordered[(n - 1) // 2] + 1
        out[f"{prefix}_mnr"] = (ordered + 1).mean()
    else:
        out[f"{prefix}_mdr"] = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2 + 1
        out[f"{prefix}_mnr"] = ordered.mean() + 1
    return out


def video_metrics_from_ranks(v2t: Tensor, t2v: Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, Tensor]:
    """Keys v2t_r{k}, v2t_mdr, v2t_mnr, t2v_r{k}, t2v_mdr, t2v_mnr from 0-based ranks (R@k as fractions).

    More sentences than videos means CLIP4Clip's multi-sentence path, whose t2v MdR is torch's median.
    """
    if v2t.numel() == 0 or t2v.numel() == 0:
        raise ValueError("video retrieval needs at least one video and one sentence")
    multi_sentence = t2v.numel() > v2t.numel()
    return {**_rank_summary(v2t, ks, "v2t", False), **_rank_summary(t2v, ks, "t2v", multi_sentence)}


def video_retrieval_metrics(
    scores: Tensor, text_to_video: Tensor, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Tensor]:
    """R@k, MdR and MnR both ways from scores[n_videos, n_texts] (CLIP4Clip's sim matrix transposed).

    `text_to_video[t]` is the video of sentence t; every video needs at least one sentence.
    """
    video_block, text_block, t2v = _dense(scores, torch.as_tensor(text_to_video))
    return video_metrics_from_ranks(*video_ranks(video_block, text_block, scores.shape[0], t2v), ks)
