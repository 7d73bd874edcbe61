"""`vltasks score` for the formats the video tasks add: video captions, video-to-text rankings,
temporal grounding (Charades-STA, DiDeMo) and video QA (open-ended answers, chosen candidates, counts).

Imported by `vltasks.score`, which registers them with the image formats. The contract is that
module's: the task's reader reads the annotations (the clips are not needed, so not checked) and the
metric classes the heads use compute, fed as each head's ``update_metrics`` feeds them, so the
numbers are the ones training reports. Result records are the ones each head's ``predict`` writes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vltasks.score import (
    SCORERS,
    Inputs,
    Pairs,
    RetrievalScorer,
    Scores,
    SplitScorer,
    _CaptionScorer,
    _floats,
    _numbers,
    _table,
)

CLIPS_UNCHECKED = {"check_videos": False}  # the video readers' option; scoring never opens a clip


# -- video captioning ------------------------------------------------------------------------------------
class _VideoCaptionScorer(_CaptionScorer):
    """The caption head's results for clips, [{video_id, caption}], against a captioned video
    corpus' split: every sentence of a video is a reference (as for COCO, the videos a results
    file captions are scored)."""

    split = "test"
    reader_options = CLIPS_UNCHECKED
    key, item = "video_id", "videos"

    def references(self, inputs: Inputs, reader_opts: dict[str, str]) -> dict[Any, list[str]]:
        return {s["video_id"]: s["captions"] for s in self.samples(inputs, reader_opts)}


@SCORERS.register("msrvtt_caption")
class MSRVTTCaptionScorer(_VideoCaptionScorer):
    description = "MSR-VTT caption results [{video_id, caption}] against MSRVTT_data.json's split"
    reader = "msrvtt_caption"


@SCORERS.register("msvd_caption")
class MSVDCaptionScorer(_VideoCaptionScorer):
    description = "MSVD caption results [{video_id, caption}] against raw-captions.pkl + <split>_list.txt"
    reader = "msvd_caption"


# -- video-text retrieval --------------------------------------------------------------------------------
class _VideoRetrievalScorer(RetrievalScorer):
    """The retrieval head's rankings for clips, [{video_id, ranked_text_ids}] (sentence ids of the
    split, best first). ``txt_r*`` are the head's keys (a video's rank is its first own sentence's
    place, as `RetrievalScorer`); ``v2t_r*`` are CLIP4Clip's (a video's sentences ranked as one
    group, placed where its first one is), which differ only where a video has several sentences.
    Training reports ``v2t_*`` from the ITC similarities alone, so they match a purely ITC ranking."""

    reader_options = CLIPS_UNCHECKED
    key = "video_id"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        values = super().compute(pairs, opts).metrics
        owner = {t: i for i, (s, _) in enumerate(pairs) for t in s["sentids"]}
        never = torch.iinfo(torch.long).max
        ranks = []
        for i, (_, r) in enumerate(pairs):
            groups: list[int] = []  # the other videos whose sentences come first, in order
            rank = never
            for t in r["ranked_text_ids"]:
                o = owner.get(t)  # an id the split does not have ranks no video
                if o == i:
                    rank = len(groups)
                    break
                if o is not None and o not in groups:
                    groups.append(o)
            ranks.append(rank)
        v2t = torch.tensor(ranks)
        values.update({f"v2t_r{k}": float((v2t < k).double().mean()) for k in (1, 5, 10)})
        notes = [
            "video-to-text only: a ranking of sentences per video says nothing about text-to-video",
            "v2t_r*: CLIP4Clip's sentence groups on this ranking; training's v2t_* rank by ITC alone",
        ]
        return Scores(values, [*_table(values), *notes])


@SCORERS.register("msrvtt")
class MSRVTTRetrievalScorer(_VideoRetrievalScorer):
    description = "MSR-VTT video-to-text rankings [{video_id, ranked_text_ids}] against a split (1k-A test)"
    reader, split = "msrvtt", "test.1k"


@SCORERS.register("msvd")
class MSVDRetrievalScorer(_VideoRetrievalScorer):
    description = "MSVD video-to-text rankings [{video_id, ranked_text_ids}] against raw-captions.pkl"
    reader, split = "msvd", "test"


@SCORERS.register("didemo_paragraphs")
class DiDeMoParagraphScorer(_VideoRetrievalScorer):
    description = "DiDeMo video-to-paragraph rankings [{video_id, ranked_text_ids}] against <split>_data.json"
    reader, split = "didemo_paragraphs", "test"


# -- temporal grounding ----------------------------------------------------------------------------------
class _MomentScorer(SplitScorer):
    """The span head's records, [{sample_id, vid, query, pred_relevant_windows: [[start, end, score],
    ...]}] (seconds), the windows best first: the file's order is the ranking, as Moment-DETR's
    evaluation takes it. A query may have no window (it then finds nothing)."""

    reader_options = CLIPS_UNCHECKED
    key, fields = "sample_id", ("pred_relevant_windows",)

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        rows = result["pred_relevant_windows"]
        if not isinstance(rows, list) or not all(_numbers(w, 3) for w in rows):
            return "pred_relevant_windows must be a list of [start, end, score] (3 finite numbers each)"
        backwards = [w for w in rows if w[1] < w[0]]
        return f"window {backwards[0]} ends before it starts" if backwards else None

    @staticmethod
    def windows(result: dict[str, Any]) -> Tensor:
        """[K, 3] (start, end, score), float64, in the file's order."""
        return torch.tensor(result["pred_relevant_windows"], dtype=torch.float64).reshape(-1, 3)


def _pad_rows(rows: Tensor, k: int) -> Tensor:
    """[n, 2] spans -> [k, 2] float32, the last span repeated (an empty span where there is none): the
    span head's padding, which changes no top-n best IoU."""
    rows = rows.float()
    if len(rows) >= k:
        return rows[:k]
    fill = rows[-1:] if len(rows) else torch.zeros(1, 2)
    return torch.cat([rows, fill.expand(k - len(rows), 2)])


@SCORERS.register("charades_sta")
class CharadesSTAScorer(_MomentScorer):
    description = "Charades-STA windows [{sample_id, pred_relevant_windows}] against charades_sta_<split>.txt"
    reader, split = "charades_sta", "test"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics import TemporalGroundingRecall

        spans = [self.windows(r)[:, :2] for _, r in pairs]
        k = max(5, *(len(w) for w in spans))
        metric = TemporalGroundingRecall()
        metric.update(
            torch.stack([_pad_rows(w, k) for w in spans]),
            torch.tensor([s["windows"][0] for s, _ in pairs], dtype=torch.float64).float(),
            ids=[s["sample_id"] for s, _ in pairs],
        )
        values = _floats(dict(metric.compute()))
        return Scores(values, _table(values))


@SCORERS.register("didemo_moments")
class DiDeMoMomentScorer(_MomentScorer):
    description = "DiDeMo moments [{sample_id, pred_relevant_windows}] against <split>_data.json (21 moments)"
    reader, split = "didemo_moments", "test"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from torchvision.ops import box_iou

        from vltasks.datamodules.moments import SEGMENT_SECONDS
        from vltasks.metrics import DiDeMoMoments
        from vltasks.metrics.functional.temporal import DIDEMO_MOMENTS, didemo_rank_moments

        def boxes(spans: Tensor) -> Tensor:  # (start, 0, end, 1): box IoU is then temporal IoU
            return torch.stack(
                [spans[:, 0], torch.zeros_like(spans[:, 0]), spans[:, 1], torch.ones_like(spans[:, 1])], -1
            )

        # the span head's rule: a moment scores its best predicted window's IoU x score
        moments = torch.tensor(DIDEMO_MOMENTS, dtype=torch.float64)
        seconds = boxes(torch.stack([moments[:, 0], moments[:, 1] + 1], -1) * SEGMENT_SECONDS)
        scores = []
        for _, r in pairs:
            w = self.windows(r)
            scores.append(
                (box_iou(seconds, boxes(w[:, :2])) * w[:, 2]).amax(1)
                if len(w)
                else torch.zeros(len(moments), dtype=torch.float64)
            )
        metric = DiDeMoMoments()
        metric.update(
            didemo_rank_moments(torch.stack(scores)),
            [s["gt_moments"] for s, _ in pairs],
            ids=[s["sample_id"] for s, _ in pairs],
        )
        values = _floats(dict(metric.compute()))
        return Scores(values, _table(values))


# -- video QA --------------------------------------------------------------------------------------------
class _VideoQAScorer(SplitScorer):
    """A video QA split's predictions as its head writes them, by the kind of question the reader
    read: open-ended [{question_id, answer: str}] (vqa head), a chosen candidate [{question_id,
    prediction: its index}] (multiple_choice head) or a count [{question_id, answer: int}] (count
    head). Scored with the head's metric classes; a NaN among them (NExT-QA: a type or group the
    split has no question of) is left out of the JSON, which cannot hold it, and named."""

    split = "test"
    reader_options = CLIPS_UNCHECKED
    key = "question_id"

    @staticmethod
    def kind(sample: dict[str, Any]) -> str:
        return "choice" if "candidates" in sample else "count" if "count" in sample else "open"

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        kind = self.kind(sample)
        truth = {"choice": "label", "count": "count", "open": "answers"}[kind]
        if sample.get(truth) is None:
            return "the annotated split has no answers"
        if kind == "choice":
            n, pick = len(sample["candidates"]), result.get("prediction")
            ok = _numbers([pick], 1) and pick in range(n) and not isinstance(pick, float)
            return None if ok else f"prediction must be the chosen candidate's index 0..{n - 1}"
        answer = result.get("answer")
        if kind == "count":
            ok = _numbers([answer], 1) and not isinstance(answer, float)
            return None if ok else "answer must be an integer (the count)"
        return None if isinstance(answer, str) else "answer must be a string"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from torchmetrics import MetricCollection

        from vltasks.metrics import CountMSE, MultipleChoiceAccuracy, NExTQAAccuracy, VQAAccuracy

        samples, results = [s for s, _ in pairs], [r for _, r in pairs]
        ids = [s["sample_id"] for s in samples]
        kind = self.kind(samples[0])
        if kind == "open":  # the vqa head with the video readers' protocol and question types
            from vltasks.datamodules import READERS

            reader = READERS.get(str(self.reader))
            types, groups = reader.question_types, reader.question_type_groups
            metrics = MetricCollection(
                {
                    "accuracy": VQAAccuracy(protocol="exact"),
                    "by_type": VQAAccuracy(
                        protocol="exact", by_answer_type=True, type_names=types, type_groups=groups
                    ),
                }
            )
            preds, answers = [r["answer"] for r in results], [s["answers"] for s in samples]
            metrics["accuracy"].update(preds, answers, ids=ids)
            metrics["by_type"].update(
                preds, answers, ids=ids, answer_types=[s["answer_type"] for s in samples]
            )
        elif kind == "count":
            metrics = MetricCollection({"mse": CountMSE()})
            metrics["mse"].update(
                torch.tensor([float(r["answer"]) for r in results]),
                torch.tensor([float(s["count"]) for s in samples]),
                ids=ids,
            )
        else:  # by index, never by candidate text (two candidates may read alike)
            picks = torch.tensor([r["prediction"] for r in results])
            labels = torch.tensor([s["label"] for s in samples])
            if self.reader == "nextqa":
                metrics = MetricCollection({"nextqa": NExTQAAccuracy()})
                metrics["nextqa"].update(picks, labels, [s["question_type"] for s in samples], ids=ids)
            else:
                metrics = MetricCollection({"accuracy": MultipleChoiceAccuracy()})
                metrics["accuracy"].update(picks, labels, ids=ids)
        values = _floats(dict(metrics.compute()))
        absent = [k for k, v in values.items() if v != v]  # NaN: a type without questions here
        values = {k: v for k, v in values.items() if k not in absent}
        note = [f"no questions of type {', '.join(absent)} in this split"] if absent else []
        return Scores(values, [*_table(values), *note])


@SCORERS.register("msrvtt_qa")
class MSRVTTQAScorer(_VideoQAScorer):
    description = "MSRVTT-QA answers [{question_id, answer}] against <split>_qa.json"
    reader = "msrvtt_qa"


@SCORERS.register("msvd_qa")
class MSVDQAScorer(_VideoQAScorer):
    description = "MSVD-QA answers [{question_id, answer}] against <split>_qa.json + youtube_mapping.txt"
    reader = "msvd_qa"


@SCORERS.register("activitynet_qa")
class ActivityNetQAScorer(_VideoQAScorer):
    description = "ActivityNet-QA answers [{question_id, answer}] against <split>_q.json + <split>_a.json"
    reader = "activitynet_qa"


@SCORERS.register("tgif_qa")
class TGIFQAScorer(_VideoQAScorer):
    description = (
        "TGIF-QA [{question_id (vid_id), answer | prediction}] against Test_<task>_question.csv "
        "(--option task=frameqa|action|transition|count)"
    )
    reader = "tgif_qa"


@SCORERS.register("nextqa")
class NExTQAScorer(_VideoQAScorer):
    description = "NExT-QA chosen candidates [{qns_id, prediction}] against <split>.csv, as eval_mc.py"
    reader, split = "nextqa", "val"
    key = "qns_id"  # <video>_<qid>, as the official results file names a question

    def samples(self, inputs: Inputs, reader_opts: dict[str, str]) -> list[dict[str, Any]]:
        return [{**s, "qns_id": s["question_id"]} for s in super().samples(inputs, reader_opts)]
