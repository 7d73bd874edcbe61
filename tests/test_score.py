"""`vltasks score`: submission files written here by hand, in the official formats, against
annotation files in the official formats, give the official scripts' numbers (VQAv2: vqaEval.py's
per-question outputs aggregated as it aggregates; COCO captions: COCOEvalCap's printout), and every
other registered format scores a perfect and a half-wrong submission as it should."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tests.metrics.test_vqa import OFFICIAL
from vltasks.cli import main
from vltasks.score import SCORERS, Inputs, ScoreError, score

DATA = Path(__file__).parent / "metrics" / "data"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH")


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["score", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- VQAv2 ---------------------------------------------------------------------------------------------
QUESTION_TYPES = ("what is", "how many", "is the")


def _vqa_files(root: Path) -> list[tuple[int, str, str, float]]:
    """questions + annotations of val2014 in visualqa.org's layout, one question per OFFICIAL case;
    returns (question_id, question type, answer type, vqaEval.py's accuracy)."""
    questions, annotations, rows = [], [], []
    for i, (_, gts, acc) in enumerate(OFFICIAL):
        qid, qtype = 1000 + i, QUESTION_TYPES[i % 3]
        atype = (
            "yes/no" if gts[0].lower().startswith("yes") else ("number" if gts[0][0].isdigit() else "other")
        )
        questions.append({"image_id": 42 + i, "question": f"question {i}?", "question_id": qid})
        annotations.append(
            {
                "question_id": qid,
                "image_id": 42 + i,
                "question_type": qtype,
                "answer_type": atype,
                "multiple_choice_answer": gts[0],
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(gts)
                ],
            }
        )
        rows.append((qid, qtype, atype, acc))
    info = {
        "info": {},
        "license": {},
        "data_subtype": "val2014",
        "task_type": "Open-Ended",
        "data_type": "mscoco",
    }
    (root / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(
        json.dumps({**info, "questions": questions})
    )
    (root / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({**info, "annotations": annotations}))
    return rows


def test_vqav2_prints_and_writes_what_vqaeval_computes(tmp_path, capsys):
    rows = _vqa_files(tmp_path)
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps([{"question_id": 1000 + i, "answer": p} for i, (p, _, _) in enumerate(OFFICIAL)])
    )
    code, out, _ = _run(capsys, "vqav2", str(results), "--root", str(tmp_path), "--split", "val2014")
    assert code == 0

    def official(accs: list[float]) -> float:  # vqaEval.setAccuracy
        return round(100 * float(sum(accs)) / len(accs), 2)

    overall = official([a for *_, a in rows])
    assert f"Overall Accuracy is: {overall:.2f}" in out
    written = json.loads((tmp_path / "results.json.scores.json").read_text())
    assert written["overall"] == overall
    for qtype in QUESTION_TYPES:
        expected = official([a for _, t, _, a in rows if t == qtype])
        assert written["perQuestionType"][qtype] == expected and f"{qtype} : {expected:.2f}" in out
    for atype in ("yes/no", "number", "other"):
        expected = official([a for _, _, t, a in rows if t == atype])
        assert written["perAnswerType"][atype] == expected and f"{atype} : {expected:.2f}" in out


def test_vqav2_submission_must_answer_the_split(tmp_path, capsys):
    _vqa_files(tmp_path)
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps([{"question_id": 1000 + i, "answer": "yes"} for i in range(1, len(OFFICIAL))])
    )
    code, _, err = _run(capsys, "vqav2", str(results), "--root", str(tmp_path))  # val2014 by default
    assert (
        code == 1 and str(results) in err and "1 of its 20 question_ids have no result (e.g. [1000])" in err
    )
    results.write_text(
        json.dumps([{"question_id": 1000, "answer": "yes"}, {"question_id": 1000, "answer": "no"}])
    )
    code, _, err = _run(capsys, "vqav2", str(results), "--root", str(tmp_path))
    assert code == 1 and "record #1: a second result for question_id=1000" in err
    results.write_text(json.dumps([{"question_id": 1000}]))
    code, _, err = _run(capsys, "vqav2", str(results), "--root", str(tmp_path))
    assert code == 1 and "record #0 (question_id=1000): missing ['answer']" in err


# -- COCO captions ---------------------------------------------------------------------------------------
# Eight val2014 images with 5 references each, and results for seven of them (one left out: the
# evaluation scores the images a results file captions), with capitals, a contraction, "--" and "%".
CAPTIONS = {
    391895: [
        "A man with a red helmet on a small moped on a dirt road.",
        "Man riding a motor bike on a dirt road on the countryside.",
        "A man riding on the back of a motorcycle.",
        "A dirt path with a young person on a motor bike rests to the foreground of a verdant area with a "
        "bridge and a background of cloud-wreathed mountains.",
        "A man in a red shirt and a red hat is on a motorcycle on a hill side.",
    ],
    522418: [
        "A woman wearing a net on her head cutting a cake.",
        "A woman cutting a large white sheet cake.",
        "A woman wearing a hair net cutting a large sheet cake.",
        "there is a woman that is cutting a white cake",
        "A woman marking a cake with the back of a chef's knife.",
    ],
    184613: [
        "A child holding a flowered umbrella and petting a yak.",
        "A young man holding an umbrella next to a herd of cattle.",
        "a young boy barefoot holding an umbrella touching the horn of a cow",
        "A young boy with an umbrella who is touching the horn of a cow.",
        "A boy holding an umbrella while standing next to livestock.",
    ],
    318219: [
        "A young boy standing in front of a computer keyboard.",
        "a little boy wearing headphones and looking at a computer monitor",
        "He is listening intently to the computer at school.",
        "A young boy stares up at the computer monitor.",
        "a young kid with head phones on using a computer ",
    ],
    554625: [
        "a boy wearing headphones using one computer in a long row of computers",
        "A little boy with earphones on listening to something.",
        "A group of people sitting at desk using computers.",
        "Children sitting at computer stations on a long table.",
        "A small child wearing headphones plays on the computer.",
    ],
    397133: [
        "A man is in a kitchen making pizzas.",
        "Man in apron standing on front of oven with pans and bakeware",
        "A baker is working in the kitchen rolling dough.",
        "A person standing by a stove in a kitchen.",
        "A table with pies being made and a person standing near a wall with pots and pans hanging on the "
        "wall.",
    ],
    37777: [
        "The dining table near the kitchen has a bowl of fruit on it.",
        "A small kitchen has various appliances and a table.",
        "The kitchen is clean and ready for us to see.",
        "A kitchen and dining area decorated in white.",
        "A kitchen that has a bowl of fruit on the table.",
    ],
    252219: [
        "A person with a shopping cart on a city street.",
        "City dwellers walk by as a homeless man begs for cash.",
        "People walking past a homeless man begging on a city street",
        "a homeless man holding a cup and standing next to a shopping cart on a street",
        "People are walking on the street by a homeless person.",
    ],
}
RESULTS = {
    391895: "a man riding a motorcycle on a dirt road",
    522418: "a woman cutting a cake with a knife",
    184613: "a boy holding an umbrella next to a cow",
    318219: "a boy sitting in front of a computer",
    554625: "Two kids playing video games on a computer, don't they?",
    397133: "a man in a kitchen preparing food",
    252219: "a man with a cart on the street -- 96% sure",
}
# pycocoevalcap 1.2's COCOEvalCap on these two files (its PTBTokenizer and scorers; SPICE left out,
# it cannot run offline), run once: the values of cocoEval.eval
COCO_EVAL = {
    "Bleu_1": 0.7655295639502501,
    "Bleu_2": 0.6763626967921671,
    "Bleu_3": 0.5778693344475302,
    "Bleu_4": 0.4611439582242546,
    "METEOR": 0.29397170775587816,
    "ROUGE_L": 0.612718244864282,
    "CIDEr": 1.4752625270637125,
}


def _coco_files(root: Path) -> tuple[Path, Path]:
    images = [
        {"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "width": 640, "height": 480} for i in CAPTIONS
    ]
    anns = [
        {"image_id": i, "id": 100 * i + j, "caption": c}
        for i, caps in CAPTIONS.items()
        for j, c in enumerate(caps)
    ]
    gt = root / "captions_val2014.json"
    gt.write_text(
        json.dumps({"info": {}, "licenses": [], "type": "captions", "images": images, "annotations": anns})
    )
    results = root / "captions_val2014_results.json"
    results.write_text(json.dumps([{"image_id": i, "caption": c} for i, c in RESULTS.items()]))
    return gt, results


def _karpathy_file(root: Path) -> None:
    """The same references in Karpathy's dataset_coco.json (all in the test split)."""
    images = [
        {
            "filepath": "val2014",
            "filename": f"COCO_val2014_{i:012d}.jpg",
            "imgid": n,
            "split": "test",
            "cocoid": i,
            "sentids": [10 * n + j for j in range(len(caps))],
            "sentences": [
                {"tokens": c.lower().split(), "raw": c, "imgid": n, "sentid": 10 * n + j}
                for j, c in enumerate(caps)
            ],
        }
        for n, (i, caps) in enumerate(CAPTIONS.items())
    ]
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))


def test_coco_caption_results_get_cocoevalcaps_numbers(tmp_path, capsys):
    gt, results = _coco_files(tmp_path)
    out_file = tmp_path / "scores.json"
    args = ["coco_caption", str(results), "--gt", str(gt), "--option", "metrics=Bleu,ROUGE_L,CIDEr"]
    code, out, _ = _run(capsys, *args, "--out", str(out_file))
    assert code == 0
    written = json.loads(out_file.read_text())
    assert list(written) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    for key, value in written.items():
        assert value == pytest.approx(COCO_EVAL[key], abs=1e-12, rel=0), key
        assert f"{key}: {COCO_EVAL[key]:0.3f}" in out  # COCOEvalCap prints "%s: %0.3f"


def test_karpathy_split_gives_the_same_numbers(tmp_path):
    _, results = _coco_files(tmp_path)
    _karpathy_file(tmp_path)
    inputs = Inputs(results, root=tmp_path, options={"metrics": "Bleu,ROUGE_L,CIDEr"})
    values = score("karpathy_caption", inputs).metrics
    assert values == pytest.approx({k: v for k, v in COCO_EVAL.items() if k != "METEOR"}, abs=1e-12, rel=0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 5, "caption": "a cat"}]))
    with pytest.raises(
        ScoreError, match=r"1 results caption images the annotations do not have \(e.g. image_id=\[5\]\)"
    ):
        score("karpathy_caption", Inputs(bad, root=tmp_path))


@needs_java
@pytest.mark.java
@pytest.mark.slow  # two METEOR jars load their paraphrase tables: about 30 s
def test_coco_caption_with_meteor_and_the_official_script_itself(tmp_path):
    gt, results = _coco_files(tmp_path)
    ours = score("coco_caption", Inputs(results, gt=gt)).metrics  # default: Bleu, METEOR, ROUGE_L, CIDEr
    assert ours == pytest.approx(COCO_EVAL, abs=1e-12, rel=0)
    coco_api = pytest.importorskip("pycocotools.coco")
    evalcap = pytest.importorskip("pycocoevalcap.eval")

    class NoSpice:  # SPICE downloads Stanford CoreNLP on first use: not here
        def method(self) -> str:
            return "SPICE"

        def compute_score(self, gts, res):
            return 0.0, [0.0] * len(gts)

    original = evalcap.Spice
    evalcap.Spice = NoSpice
    try:
        coco = coco_api.COCO(str(gt))
        res = coco.loadRes(str(results))
        ev = evalcap.COCOEvalCap(coco, res)
        ev.params["image_id"] = res.getImgIds()
        ev.evaluate()
    finally:
        evalcap.Spice = original
    assert ours == pytest.approx({k: float(ev.eval[k]) for k in COCO_EVAL}, abs=1e-12, rel=0)


# -- QVHighlights -------------------------------------------------------------------------------------------
def test_qvhighlights_reproduces_the_published_metrics_file(tmp_path, capsys):
    for name in ("qvhighlights_val_gt", "qvhighlights_val_sample_preds"):
        with gzip.open(DATA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            (tmp_path / f"{name}.jsonl").write_text(f.read())
    published = json.loads((DATA / "qvhighlights_sample_val_metrics.json").read_text())["metrics"]
    preds, gt = tmp_path / "qvhighlights_val_sample_preds.jsonl", tmp_path / "qvhighlights_val_gt.jsonl"
    code, out, _ = _run(capsys, "qvhighlights", str(preds), "--gt", str(gt))
    assert code == 0
    assert json.loads((tmp_path / "qvhighlights_val_sample_preds.jsonl.scores.json").read_text()) == published
    assert json.dumps(published["brief"], indent=4) in out


# -- the other formats: perfect and half-wrong submissions ---------------------------------------------------
def _flip(sample: dict, fmt: str) -> dict:
    """A wrong result for a sample."""
    if fmt == "refcoco":
        x, y, w, h = sample["bbox"]
        return {"sent_id": sample["sent_id"], "bbox": [x + w, y + h, w, h]}  # IoU 0
    if fmt == "snli_ve":
        other = next(c for c in ("contradiction", "neutral", "entailment") if c != sample["gold_label"])
        return {"pairID": sample["pairID"], "label": other}
    if fmt == "vcr":
        a, r = [0.0] * 4, [0.0] * 4
        a[(sample["answer_label"] + 1) % 4], r[sample["rationale_label"]] = 1.0, 1.0
        return {"annot_id": sample["annot_id"], "answer_probs": a, "rationale_probs": r}
    if fmt == "visual7w":
        wrong = next(c for c in sample["candidates"] if c != sample["answer"])
        return {"qa_id": sample["qa_id"], "question": sample["question"], "candidates": [{"answer": wrong}]}
    return {"image_id": sample["image_id"], "ranked_text_ids": [-1, *sample["sentids"]]}  # karpathy: rank 1


def _right(sample: dict, fmt: str) -> dict:
    if fmt == "refcoco":
        return {
            "sent_id": sample["sent_id"],
            "ref_id": sample["ref_id"],
            "image_id": sample["image_id"],
            "bbox": sample["bbox"],
        }
    if fmt == "snli_ve":
        return {"pairID": sample["pairID"], "label": sample["gold_label"]}
    if fmt == "vcr":
        a, r = [0.1] * 4, [0.1] * 4
        a[sample["answer_label"]], r[sample["rationale_label"]] = 0.7, 0.7
        return {"annot_id": sample["annot_id"], "answer_probs": a, "rationale_probs": r}
    if fmt == "visual7w":
        return {
            "qa_id": sample["qa_id"],
            "question": sample["question"],
            "candidates": [{"answer": sample["answer"]}],
        }
    return {"image_id": sample["image_id"], "ranked_text_ids": sample["sentids"]}


FORMATS = {"refcoco": "val", "snli_ve": "dev", "vcr": "val", "visual7w": "val", "karpathy": "val"}
MAIN_METRIC = {
    "refcoco": "acc@0.5_val",
    "snli_ve": "accuracy",
    "vcr": "q2a",
    "visual7w": "accuracy",
    "karpathy": "txt_r1",
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_reader_based_formats_score_right_and_wrong_submissions(fmt, tmp_path, capsys):
    from vltasks.datamodules import READERS
    from vltasks.datamodules.synthetic import ensure_world

    split = FORMATS[fmt]
    ensure_world(fmt, tmp_path / "data", {split: 4})
    extra = {"check_metadata": False} if fmt == "vcr" else {}
    reader = READERS.get(fmt)(str(tmp_path / "data"), {"test": split}, "error", check_images=False, **extra)
    samples = reader.samples("test")
    results = tmp_path / "results.json"
    results.write_text(json.dumps([_right(s, fmt) for s in samples]))
    args = [fmt, str(results), "--root", str(tmp_path / "data"), "--split", split]
    code, out, _ = _run(capsys, *args)
    assert code == 0 and MAIN_METRIC[fmt] in out
    assert json.loads((tmp_path / "results.json.scores.json").read_text())[MAIN_METRIC[fmt]] == 1.0
    half = len(samples) // 2
    rows = [_flip(s, fmt) if i < half else _right(s, fmt) for i, s in enumerate(samples)]
    results.write_text(json.dumps(rows))
    assert _run(capsys, *args)[0] == 0
    value = json.loads((tmp_path / "results.json.scores.json").read_text())[MAIN_METRIC[fmt]]
    assert value == pytest.approx((len(samples) - half) / len(samples))  # karpathy: rank 2 misses R@1
    results.write_text(json.dumps(rows[1:]))  # one sample without a result
    code, _, err = _run(capsys, *args)
    assert code == 1 and str(results) in err and "have no result" in err


# -- the later tasks' formats: perfect, half-wrong and malformed submissions ---------------------------------
# format: (split scored, its metric, the best value); tgif_qa:<task> is TGIF-QA with --option task=<task>
LATER = {
    "msrvtt_caption": ("test", "Bleu_4", 1.0),
    "msvd_caption": ("test", "Bleu_4", 1.0),
    "msrvtt": ("test", "txt_r1", 1.0),
    "msvd": ("test", "v2t_r1", 1.0),
    "didemo_paragraphs": ("test", "v2t_r1", 1.0),
    "charades_sta": ("test", "R1@0.5", 1.0),
    "didemo_moments": ("val", "R@1", 1.0),
    "msrvtt_qa": ("test", "accuracy", 1.0),
    "msvd_qa": ("test", "accuracy", 1.0),
    "activitynet_qa": ("test", "accuracy", 1.0),
    "tgif_qa": ("test", "accuracy", 1.0),
    "tgif_qa:action": ("test", "accuracy", 1.0),
    "tgif_qa:count": ("test", "mse", 0.0),
    "nextqa": ("test", "accuracy", 1.0),
    "visual_genome": ("test", "det_map", 1.0),
}
# the field naming a result record's sample, by format
LATER_KEYS = {"charades_sta": "sample_id", "didemo_moments": "sample_id", "nextqa": "qns_id"}
LATER_KEYS |= {
    f: "video_id" for f in ("msrvtt_caption", "msvd_caption", "msrvtt", "msvd", "didemo_paragraphs")
}
LATER_KEYS |= {"visual_genome": "image_id"}


def _later_world(fmt: str, root: Path) -> tuple[str, list[dict], list[str]]:
    """The format's synthetic world at a tiny size: (format, the scored split's samples, the
    --option arguments the scorer needs)."""
    from vltasks.datamodules import READERS
    from vltasks.datamodules.synthetic import ensure_world

    name, _, task = fmt.partition(":")
    split = LATER[fmt][0]
    writer_opts = {} if name == "visual_genome" else {"sources": ("features",)}
    ensure_world(name, root, {split: 6 if name == "tgif_qa" else 3}, **writer_opts)  # TGIF: 2 counts
    reader_opts = {"check_images": False} if name == "visual_genome" else {"check_videos": False}
    options = {"task": task} if task else {}
    reader = READERS.get(name)(str(root), {"test": split}, "error", **reader_opts, **options)
    if name == "visual_genome":
        options["meteor"] = "never"  # the scorer's: det_map only, no Java needed, and said so
    return name, reader.samples("test"), [a for k, v in options.items() for a in ("--option", f"{k}={v}")]


def _later_result(sample: dict, fmt: str, right: bool, samples: list[dict] | None = None) -> dict:
    """A right or a wrong result record for one sample (of ``samples``: retrieval ranks theirs)."""
    name = fmt.partition(":")[0]
    key = LATER_KEYS.get(name, "question_id")
    out = {key: sample["question_id" if key == "qns_id" else key]}
    if name.endswith("_caption"):
        return {**out, "caption": sample["captions"][0] if right else "zebra zebra on a yacht tonight"}
    if name in ("msrvtt", "msvd", "didemo_paragraphs"):  # wrong: another video's sentence first
        other = next(s for s in samples or [] if s["video_id"] != sample["video_id"])
        return {**out, "ranked_text_ids": ([] if right else other["sentids"][:1]) + sample["sentids"]}
    if name == "charades_sta":
        s, e = sample["windows"][0]
        return {**out, "pred_relevant_windows": [[s, e, 0.9] if right else [e, 2 * e - s, 0.9]]}
    if name == "didemo_moments":  # the annotators' majority moment, or a segment none of them chose
        s, e = sample["gt_moments"][0]
        assert (s, e) != (0, 5), "no segment outside the moment"
        wrong = [0.0, 5.0] if s > 0 else [25.0, 30.0]
        return {**out, "pred_relevant_windows": [[5.0 * s, 5.0 * (e + 1), 0.8] if right else [*wrong, 0.8]]}
    if name == "visual_genome":
        boxes = [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in sample["boxes"].tolist()]
        if not right:  # moved by their own size: IoU 0
            boxes = [[x + w, y + h, w, h] for x, y, w, h in boxes]
        scores = [1.0 - 0.1 * i for i in range(len(boxes))]
        return {**out, "boxes": boxes, "captions": sample["phrases"], "scores": scores}
    if "candidates" in sample:
        return {**out, "prediction": sample["label"] if right else (sample["label"] + 1) % 5}
    if "count" in sample:
        wrong = sample["count"] + 1 if sample["count"] < 10 else 9
        return {**out, "answer": sample["count"] if right else wrong}
    return {**out, "answer": sample["answers"][0] if right else "zebra"}


def _malformed(record: dict, fmt: str) -> tuple[dict, str]:
    """The record with its answer field of the wrong type, and what the error says."""
    name = fmt.partition(":")[0]
    if name.endswith("_caption"):
        return {**record, "caption": 5}, "caption must be a string"
    if name in ("msrvtt", "msvd", "didemo_paragraphs"):
        return {**record, "ranked_text_ids": "7"}, "ranked_text_ids must be a list"
    if name in ("charades_sta", "didemo_moments"):
        return {
            **record,
            "pred_relevant_windows": [[3.0, 1.0, 0.5]],
        }, "window [3.0, 1.0, 0.5] ends before it starts"
    if name == "visual_genome":
        n = len(record["boxes"])
        return {**record, "scores": record["scores"][:-1]}, f"{n} boxes, {n} captions and {n - 1} scores"
    if "prediction" in record:
        return {**record, "prediction": 7}, "prediction must be the chosen candidate's index 0..4"
    if fmt == "tgif_qa:count":
        return {**record, "answer": "3"}, "answer must be an integer"
    return {**record, "answer": 1}, "answer must be a string"


@pytest.mark.parametrize("fmt", sorted(LATER))
def test_later_formats_score_right_wrong_and_malformed_submissions(fmt, tmp_path, capsys):
    name, samples, options = _later_world(fmt, tmp_path / "data")
    split, metric, best = LATER[fmt]
    results = tmp_path / "results.json"
    args = [name, str(results), "--root", str(tmp_path / "data"), "--split", split, *options]
    scores = tmp_path / "results.json.scores.json"
    rows = [_later_result(s, fmt, True, samples) for s in samples]
    results.write_text(json.dumps(rows))
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert metric in out and json.loads(scores.read_text())[metric] == pytest.approx(best, abs=1e-6)
    if name == "visual_genome":
        assert "map not reported: it needs METEOR" in out and "map" not in json.loads(scores.read_text())
    half = len(samples) // 2
    assert half >= 1
    rows = [_later_result(s, fmt, i >= half, samples) for i, s in enumerate(samples)]
    results.write_text(json.dumps(rows))
    assert _run(capsys, *args)[0] == 0
    value = json.loads(scores.read_text())[metric]
    if metric == "mse":  # each wrong count is off by one
        assert value == pytest.approx(half / len(samples))
    elif name.endswith("_caption") or name == "visual_genome":
        assert value < best - 0.1
    else:
        assert value == pytest.approx((len(samples) - half) / len(samples))
    bad, says = _malformed(rows[1], fmt)
    results.write_text(json.dumps([rows[0], bad, *rows[2:]]))
    code, _, err = _run(capsys, *args)
    key = next(iter(rows[1]))
    assert code == 1 and f"{results}: result {key}={rows[1][key]!r}: {says}" in err
    if not name.endswith("_caption"):  # captions score the items a file captions, as COCO's evaluation
        results.write_text(json.dumps(rows[1:]))
        code, _, err = _run(capsys, *args)
        assert code == 1 and str(results) in err and "have no result" in err


def test_video_retrieval_ranks_a_videos_sentences_as_one_group(tmp_path):
    """MSVD: several sentences per video. A ranking that puts two sentences of one other video
    first is rank 2 by the first own sentence (txt_r*), rank 1 by CLIP4Clip's groups (v2t_r*)."""
    name, samples, _ = _later_world("msvd", tmp_path / "data")
    other = {s["imgid"]: s["sentids"] for s in samples}
    rows = [
        {"video_id": s["video_id"], "ranked_text_ids": [*other[(s["imgid"] + 1) % 3][:2], *s["sentids"]]}
        for s in samples
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    values = score(name, Inputs(results, root=tmp_path / "data", split="test")).metrics
    assert values["txt_r1"] == 0 and values["txt_r5"] == 1 and values["v2t_r1"] == 0
    assert values["v2t_r5"] == 1
    rows = [{**r, "ranked_text_ids": r["ranked_text_ids"][1:]} for r in rows]
    results.write_text(json.dumps(rows))
    values = score(name, Inputs(results, root=tmp_path / "data", split="test")).metrics
    assert values["txt_r1"] == 0 and values["v2t_r1"] == 0  # still one other video first


def test_charades_scores_as_the_span_head_validates(tmp_path):
    """The span head's predictions for Charades-STA, scored from the file, give the recall the head's
    own update_metrics computes on the same outputs (spans on a 1/8 grid of the 30 s clips, so the
    file's 0.01 s rounding loses nothing)."""
    import torch
    from vltasks.heads.span import SpanHead

    from vltasks.batch import Instances

    name, samples, _ = _later_world("charades_sta", tmp_path / "data")
    assert {s["duration"] for s in samples} == {30.0}
    head = SpanHead(
        8, "charades_sta", width=8, layers=1, heads=1, num_queries=6, vision_width=8, text_width=8
    )
    g = torch.Generator().manual_seed(0)
    n = len(samples)
    centres = torch.randint(1, 8, (n, 6, 1), generator=g) / 8
    widths = torch.randint(1, 3, (n, 6, 1), generator=g) / 4
    outputs = {"spans": torch.cat([centres, widths], -1), "logits": torch.randn(n, 6, 2, generator=g)}
    batch = {
        "duration": torch.tensor([s["duration"] for s in samples], dtype=torch.float64),
        "targets": [Instances(windows=torch.tensor(s["windows"], dtype=torch.float64)) for s in samples],
        **{k: [s[k] for s in samples] for k in ("sample_id", "vid", "query")},
    }
    metrics = head.metrics()
    head.update_metrics(metrics, outputs, batch)
    expected = {k: float(v) for k, v in metrics.compute().items()}
    results = tmp_path / "predictions.json"
    results.write_text(json.dumps(head.predict(outputs, batch)))
    values = score(name, Inputs(results, root=tmp_path / "data", split="test")).metrics
    assert values == pytest.approx(expected, abs=1e-12, rel=0)
    assert 0 < values["mIoU"] < 1


@pytest.mark.parametrize("fmt", ["msrvtt_qa", "nextqa"])
def test_video_qa_reports_the_heads_per_type_keys(fmt, tmp_path):
    """The head's keys: MSRVTT-QA's vqa head gives accuracy, overall and each question type the
    split has; NExT-QA's every type and group, NaN where the split has none of it, which the
    scorer leaves out of the JSON and names."""
    name, samples, options = _later_world(fmt, tmp_path / "data")
    results = tmp_path / "results.json"
    results.write_text(json.dumps([_later_result(s, fmt, True) for s in samples]))
    result = score(name, Inputs(results, root=tmp_path / "data", split="test"))
    present = {s["question_type"] for s in samples}
    if fmt == "msrvtt_qa":
        assert set(result.metrics) == {"accuracy", "overall", *present}
        return
    measured = present | {t[0] for t in present} | ({"TN"} if "TP" in present else set())  # TN counts TP
    absent = [t for t in ("CW", "CH", "TN", "TC", "TP", "DL", "DC", "DO", "C", "T", "D") if t not in measured]
    assert set(result.metrics) == {"accuracy", *measured}
    assert absent and f"no questions of type {', '.join(absent)} in this split" in result.lines


def test_densecap_meteor_option(tmp_path):
    name, samples, _ = _later_world("visual_genome", tmp_path / "data")
    results = tmp_path / "results.json"
    results.write_text(json.dumps([_later_result(s, "visual_genome", right=True) for s in samples]))
    inputs = Inputs(results, root=tmp_path / "data", split="test", options={"meteor": "sometimes"})
    with pytest.raises(ScoreError, match=r"--option meteor must be one of \('auto', 'java', 'never'\)"):
        score(name, inputs)


@needs_java
@pytest.mark.java
@pytest.mark.slow  # the METEOR jar loads its paraphrase table
def test_densecap_with_meteor_reports_map(tmp_path):
    name, samples, _ = _later_world("visual_genome", tmp_path / "data")
    results = tmp_path / "results.json"
    results.write_text(json.dumps([_later_result(s, "visual_genome", right=True) for s in samples]))
    values = score(name, Inputs(results, root=tmp_path / "data", split="test")).metrics  # meteor: auto
    assert values == pytest.approx({"map": 1.0, "det_map": 1.0})


def test_every_registered_format_is_listed(capsys):
    code, out, _ = _run(capsys, "--list")
    assert code == 0
    for name in SCORERS:
        assert out.count(f"{name} ") >= 1
    assert {"vqav2", "coco_caption", "karpathy_caption", "karpathy", "refcoco", "snli_ve", "vcr"} <= set(
        SCORERS
    )
    assert {name.partition(":")[0] for name in LATER} <= set(SCORERS)
    code, _, err = _run(capsys, "nope", "x.json")
    assert code == 2 and "unknown format 'nope'" in err
