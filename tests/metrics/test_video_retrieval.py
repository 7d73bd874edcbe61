"""Video-text retrieval (CLIP4Clip's protocol): R@k, MdR and MnR against direct numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vltasks.metrics import ImageTextRetrieval, VideoTextRetrieval
from vltasks.metrics.functional import retrieval_recall, video_retrieval_metrics
from vltasks.metrics.functional.retrieval import video_metrics_from_ranks


def _stable_ranks(x: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """0-based position of column gt[q] in row q sorted by descending score, ties by column index."""
    order = np.argsort(-x, axis=1, kind="stable")
    return np.argmax(order == gt[:, None], axis=1)


def _reference(scores: np.ndarray, text_to_video: np.ndarray) -> dict[str, float]:
    """CLIP4Clip's metrics from a [videos, sentences] matrix, ranked by a stable sort.

    v2t: each video's sentence group scored by its best sentence; t2v: every sentence a query. MdR and
    MnR as its `compute_metrics` (np.median / np.mean of the ranks, + 1), except t2v with several
    sentences per video, where `tensor_text_to_video_metrics` takes torch.median and np.mean(rank + 1).
    """
    n_videos = scores.shape[0]
    groups = np.stack([scores[:, text_to_video == v].max(1) for v in range(n_videos)], axis=1)
    multi = len(text_to_video) > n_videos
    out: dict[str, float] = {}
    for name, ranks, lower in (
        ("v2t", _stable_ranks(groups, np.arange(n_videos)), False),
        ("t2v", _stable_ranks(scores.T, text_to_video), multi),
    ):
        for k in (1, 5, 10):
            out[f"{name}_r{k}"] = float(np.sum(ranks < k)) / len(ranks)
        if lower:
            out[f"{name}_mdr"] = float(torch.median(torch.from_numpy(ranks + 1)))
            out[f"{name}_mnr"] = float(np.mean(ranks + 1))
        else:
            out[f"{name}_mdr"] = float(np.median(ranks) + 1)
            out[f"{name}_mnr"] = float(np.mean(ranks) + 1)
    return out


def _clip4clip_single_sentence(sim: np.ndarray) -> dict[str, float]:
    """CLIP4Clip's `compute_metrics` idea for sim[query, candidate] with the GT on the diagonal: the GT's
    position is where the sorted row equals the diagonal (only well defined without ties)."""
    ind = np.where(np.sort(-sim, axis=1) - np.diag(-sim)[:, None] == 0)[1]
    assert len(ind) == sim.shape[0], "a tie: CLIP4Clip's formula is ambiguous here"
    out = {f"r{k}": float(np.sum(ind < k)) / len(ind) for k in (1, 5, 10)}
    return {**out, "mdr": float(np.median(ind) + 1), "mnr": float(np.mean(ind) + 1)}


def _assert_equal(got: dict[str, torch.Tensor], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key].dtype == torch.float64 and got[key].item() == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("n", [40, 41])  # an even count: MdR is the mean of the two middle ranks
def test_one_sentence_per_video_is_clip4clips_formula(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    videos = torch.randn(n, 16, generator=g)
    scores = videos @ (videos + 2.0 * torch.randn(n, 16, generator=g)).T  # [videos, sentences]
    got = video_retrieval_metrics(scores, torch.arange(n))
    for name, sim in (("t2v", scores.T.double().numpy()), ("v2t", scores.double().numpy())):
        ref = _clip4clip_single_sentence(sim)
        _assert_equal({k.split("_")[1]: v for k, v in got.items() if k.startswith(name)}, ref)
    assert got["v2t_mdr"] > 1 and got["t2v_mdr"] > 1  # the comparison is not only about rank 1


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_sentence_equals_direct_computation(seed: int, ties: bool) -> None:
    g = torch.Generator().manual_seed(seed)
    n_videos = 30 + seed
    counts = torch.randint(1, 5, (n_videos,), generator=g)
    text_to_video = torch.repeat_interleave(torch.arange(n_videos), counts)
    text_to_video = text_to_video[torch.randperm(text_to_video.numel(), generator=g)]  # interleaved
    scores = torch.randn(n_videos, text_to_video.numel(), generator=g)
    scores += 1.5 * (torch.arange(n_videos)[:, None] == text_to_video[None, :])
    if ties:
        scores = torch.round(scores * 2) / 2  # many equal scores, also with the ground truth
        assert (scores[:, :, None] == scores[:, None, :]).sum() > scores.numel() * 3
    expected = _reference(scores.double().numpy(), text_to_video.numpy())
    _assert_equal(video_retrieval_metrics(scores, text_to_video), expected)
    _assert_equal(video_retrieval_metrics(scores.double(), text_to_video), expected)


def test_v2t_ranks_sentence_groups_not_sentences() -> None:
    """Video 0's only sentence scores 0.5; video 1's three sentences all beat it. CLIP4Clip ranks video
    1's group once (rank 2), while the image-text rule counts each sentence (rank 4)."""
    scores = torch.tensor([[0.5, 0.6, 0.7, 0.8], [0.0, 0.9, 0.1, 0.2]])
    text_to_video = torch.tensor([0, 1, 1, 1])
    got = video_retrieval_metrics(scores, text_to_video, ks=(1, 2, 3))
    assert got["v2t_r1"].item() == 0.5 and got["v2t_r2"].item() == 1.0  # ranks 2 and 1
    assert got["v2t_mdr"].item() == 1.5 and got["v2t_mnr"].item() == 1.5
    assert retrieval_recall(scores, text_to_video, ks=(1, 2, 3))["txt_r3"].item() == 0.5  # rank 4
    # t2v, 4 sentences (multi-sentence): ranks 1, 1, 2, 2 -> torch.median gives the lower middle, 1
    assert got["t2v_mdr"].item() == 1.0 and got["t2v_mnr"].item() == 1.5


def test_mean_rank_follows_clip4clips_arithmetic() -> None:
    """np.mean(r) + 1 and np.mean(r + 1) differ in the last bit for these ranks; each path keeps its own."""
    ranks = torch.tensor([511] * 12 + [520])
    assert np.mean(ranks.numpy()) + 1 != np.mean(ranks.numpy() + 1)
    multi = video_metrics_from_ranks(torch.zeros(1, dtype=torch.long), ranks)  # 13 sentences, 1 video
    assert multi["t2v_mnr"].item() == np.mean(ranks.numpy() + 1)
    single = video_metrics_from_ranks(ranks, ranks)
    assert single["t2v_mnr"].item() == single["v2t_mnr"].item() == np.mean(ranks.numpy()) + 1


def test_ties_rank_the_lower_index_first() -> None:
    scores = torch.ones(3, 3)  # every score tied: the stable sort keeps index order
    got = video_retrieval_metrics(scores, torch.arange(3), ks=(1,))
    assert got["v2t_mdr"].item() == 2.0 and got["v2t_mnr"].item() == 2.0 and got["t2v_r1"].item() == 1 / 3


def test_class_equals_function_with_separate_batches_and_duplicates() -> None:
    g = torch.Generator().manual_seed(5)
    videos = torch.randn(12, 8, generator=g)
    text_to_video = torch.arange(12).repeat_interleave(2)[:-1]  # video 11 has one sentence
    texts = videos[text_to_video] + 2.0 * torch.randn(text_to_video.numel(), 8, generator=g)
    metric = VideoTextRetrieval(chunk=5)
    metric.update(text_embeds=texts[:10], text_video_ids=text_to_video[:10] + 100, text_ids=range(10))
    metric.update(video_embeds=videos[:7], video_ids=torch.arange(7) + 100)
    metric.update(video_embeds=videos[5:], video_ids=torch.arange(5, 12) + 100)  # 105, 106 twice
    metric.update(text_embeds=texts[8:], text_video_ids=text_to_video[8:] + 100, text_ids=range(8, 23))
    normed = torch.nn.functional.normalize(videos, dim=-1) @ torch.nn.functional.normalize(texts, dim=-1).T
    _assert_equal(
        metric.compute(), {k: v.item() for k, v in video_retrieval_metrics(normed, text_to_video).items()}
    )
    assert VideoTextRetrieval.higher_is_better is None and ImageTextRetrieval.higher_is_better


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least one sentence for every video"):
        video_retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="text_to_video must index the 3 videos"):
        video_retrieval_metrics(torch.randn(3, 3), torch.tensor([0, 1, 3]))
    metric = VideoTextRetrieval()
    metric.update(video_embeds=torch.randn(2, 4), video_ids=["a", "b"])
    with pytest.raises(ValueError, match="needs both video and text embeddings"):
        metric.compute()
    metric.update(text_embeds=torch.randn(1, 4), text_video_ids=["c"])
    with pytest.raises(ValueError, match="video ids that were never given"):
        metric.compute()
    with pytest.raises(ValueError, match="text_video_ids"):
        metric.update(text_embeds=torch.randn(1, 4))
