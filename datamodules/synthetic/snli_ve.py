"""Write the synthetic world in the official SNLI-VE layout (necla-ml/SNLI-VE, 2020 generator).

    <root>/snli_ve_<split>.jsonl               one SNLI pair per line, keys sorted, gold_label != "-"
    <root>/flickr30k_images/<Flickr30K_ID>.jpg

Each image gets one caption (sentence1, the premise SNLI annotators saw) and three hypotheses, one per
label, as SNLI collected them. Entailment and contradiction are decided by what the image shows
("there is a red circle", "there is no blue square", "the circle is green"); most contradictions are
a one-word edit of the entailed hypothesis (the style of many SNLI contradictions), so the text alone
cannot tell that pair apart. Neutral hypotheses state what no image of this world can show ("the red
circle is made of wood") about an object that is there; the same statement about an absent object is
a contradiction. Neutral is therefore partly visible in the text alone, as in SNLI, so the summary
reports a hypothesis-only baseline next to chance and the majority class: a model must beat it to
show it reads the image. R names a colour ("red object"), a shape ("circle") or both ("red circle");
colours, the easiest to see, are named most.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .world import COLORS, SHAPES, Scene, describe, image_rng, render, sample_scene
from .writers import WorldSpec, synthetic_writer

LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
UNSEEN: tuple[str, ...] = (  # properties no image of the world shows
    "is made of wood",
    "is made of metal",
    "is made of glass",
    "is heavy",
    "is hot",
    "is wet",
    "is brand new",
    "belongs to a child",
)
IMAGE_DIR = "flickr30k_images"
DEFAULT_SPLITS = {"train": 2000, "dev": 500}


@dataclass(frozen=True)
class Hypothesis:
    label: str
    template: str  # e.g. "exist/color", "unseen/shape": what a hypothesis-only model can know
    text: str


def jsonl_path(root: Path | str, split: str) -> Path:
    return Path(root) / f"snli_ve_{split}.jsonl"


def image_path(root: Path | str, image_id: str, image_dir: str = IMAGE_DIR) -> Path:
    return Path(root) / image_dir / f"{image_id}.jpg"


def _pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def caption(scene: Scene) -> str:
    """The premise sentence: every object, e.g. 'A small red circle and a large blue square.'"""
    parts = [f"a {describe(o, with_size=True)}" for o in scene.objects]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + " on a white background."


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


REFERENTS = {"color": 0.5, "shape": 0.25, "both": 0.25}  # what a hypothesis names; colour is easiest
UNSEEN_CONTRADICTION = 0.25  # share of contradictions that are an unseen property of an absent R


def _referents(scene: Scene, kind: str) -> tuple[list[str], list[str]]:
    """Phrases of one kind ("red object", "circle", "red circle") that name something / nothing here."""
    if kind == "color":
        have, every = {o.color for o in scene.objects}, list(COLORS)
        return [f"{c} object" for c in every if c in have], [f"{c} object" for c in every if c not in have]
    if kind == "shape":
        have = {o.shape for o in scene.objects}
        return [s for s in SHAPES if s in have], [s for s in SHAPES if s not in have]
    have_cs = {(o.color, o.shape) for o in scene.objects}
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    near = [(c, s) for c, s in pairs if (c, s) not in have_cs and any(c == x or s == y for x, y in have_cs)]
    return [f"{c} {s}" for c, s in pairs if (c, s) in have_cs], [f"{c} {s}" for c, s in near]


def _referent(scene: Scene, rng: np.random.Generator, present: bool) -> tuple[str, str]:
    """(kind, phrase) of a thing that is (or is not) in the image; falls back to colours."""
    kind = str(rng.choice(list(REFERENTS), p=list(REFERENTS.values())))
    here, absent = _referents(scene, kind)
    if not (here if present else absent):
        kind, (here, absent) = "color", _referents(scene, "color")
    return kind, _pick(rng, here if present else absent)


def hypotheses(scene: Scene, rng: np.random.Generator) -> list[Hypothesis]:
    """One entailed, one neutral, one contradicted hypothesis about the scene.

    The entailed one is "there is a R" (R here), "there is no R" (R absent) or "the <shape> is
    <colour>" (a shape seen once). The contradiction is most often a
    minimal edit of it ("a" <-> "no", another colour), or else "the R <unseen property>" about an
    R that is absent. The neutral one states an unseen property of an R that is here.
    """
    unique = [o for o in scene.objects if scene.is_unique(o, ("shape",))]
    form = _pick(rng, ["exist", "no", "color"] if unique else ["exist", "no"])
    if form == "color":
        o = _pick(rng, unique)
        wrong = _pick(rng, [k for k in COLORS if k != o.color])
        entailed = Hypothesis("entailment", "color", _sentence(f"the {o.shape} is {o.color}"))
        edited = Hypothesis("contradiction", "color", _sentence(f"the {o.shape} is {wrong}"))
    else:
        kind, ref = _referent(scene, rng, present=form == "exist")
        say = {"exist": f"there is a {ref}", "no": f"there is no {ref}"}
        other = "no" if form == "exist" else "exist"
        entailed = Hypothesis("entailment", f"{form}/{kind}", _sentence(say[form]))
        edited = Hypothesis("contradiction", f"{other}/{kind}", _sentence(say[other]))
    contradiction = edited
    if rng.random() < UNSEEN_CONTRADICTION:
        kind, ref = _referent(scene, rng, present=False)
        text = f"the {ref} {_pick(rng, list(UNSEEN))}"
        contradiction = Hypothesis("contradiction", f"unseen/{kind}", _sentence(text))
    kind, ref = _referent(scene, rng, present=True)
    neutral = Hypothesis("neutral", f"unseen/{kind}", _sentence(f"the {ref} {_pick(rng, list(UNSEEN))}"))
    return [entailed, neutral, contradiction]


def _parses(text: str) -> tuple[str, str]:
    """Flat stand-ins for SNLI's Stanford parses (binary and labelled), so every field exists."""
    words = text.rstrip(".").split() + ["."]
    binary = "( " + " ".join(words[:-1]) + " ) ."
    return f"( {binary} )", "(ROOT (S " + " ".join(f"(X {w})" for w in words) + "))"


def _record(image_id: str, caption_no: int, premise: str, h: Hypothesis, annotators: list[str]) -> dict:
    caption_id = f"{image_id}.jpg#{caption_no}"
    rec = {
        "Flickr30K_ID": image_id,
        "annotator_labels": annotators,
        "captionID": caption_id,
        "gold_label": h.label,
        "pairID": f"{caption_id}r1{h.label[0]}",
        "sentence1": premise,
        "sentence2": h.text,
    }
    for key, text in (("sentence1", premise), ("sentence2", h.text)):
        rec[f"{key}_binary_parse"], rec[f"{key}_parse"] = _parses(text)
    return dict(sorted(rec.items()))  # the generator writes OrderedDict(sorted(line.items()))


def _annotators(label: str, rng: np.random.Generator, n: int) -> list[str]:
    """SNLI train pairs carry the author's label only; dev/test five, at least three agreeing."""
    if n == 1:
        return [label]
    out = [label] * n
    for i in rng.choice(n, size=int(rng.integers(0, 3)), replace=False):
        out[int(i)] = _pick(rng, [x for x in LABELS if x != label])
    return out


def _image_ids(seed: int, total: int) -> list[str]:
    """Distinct Flickr-like numeric ids (6 to 10 digits, not contiguous)."""
    rng = np.random.default_rng([int(seed), 0xF1C4])
    ids: dict[int, None] = {}  # insertion-ordered set
    while len(ids) < total:
        for i in rng.integers(100_000, 9_999_999_999, size=2 * total + 8).tolist():
            if len(ids) < total:
                ids.setdefault(int(i))
    return [str(i) for i in ids]


def _text_only_baseline(rows: dict[str, list[tuple[Hypothesis, str]]], first: str) -> dict[str, float]:
    """Accuracy of answering each template's majority label from the first split (no image)."""
    by_template: dict[str, Counter[str]] = defaultdict(Counter)
    for h, _ in rows[first]:
        by_template[h.template][h.label] += 1
    guess = {t: c.most_common(1)[0][0] for t, c in by_template.items()}
    return {
        split: float(np.mean([guess.get(h.template) == h.label for h, _ in r])) if r else 0.0
        for split, r in rows.items()
    }


@synthetic_writer("snli_ve", DEFAULT_SPLITS)
def write_snli_ve(
    world: WorldSpec, min_objects: int = 1, max_objects: int = 3, jpeg_quality: int = 95
) -> dict[str, Any]:
    """Write ``snli_ve_<split>.jsonl`` and the images under ``root``; return a summary.

    ``splits`` and ``test_splits`` map split names (``train``, ``dev``, ``test``) to image counts
    (three pairs per image); SNLI-VE publishes test labels, so both are written alike. The summary
    (also the world's meta) has per-split label and template counts, the chance, majority and
    hypothesis-only baselines, and ``template`` (pairID -> template).
    """
    root, seed, image_size, all_splits = world.root, world.seed, world.image_size, world.all_splits
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    ids = _image_ids(seed, sum(all_splits.values()))
    rows: dict[str, list[tuple[Hypothesis, str]]] = {}
    start = 0
    for split, n in all_splits.items():
        rows[split] = []
        lines = []
        for image_id in ids[start : start + n]:
            scene = sample_scene(
                image_rng(seed, int(image_id), 0), int(image_id), image_size, min_objects, max_objects
            )
            render(scene).save(image_path(root, image_id), "JPEG", quality=jpeg_quality)
            rng = image_rng(seed, int(image_id), 3)
            premise, caption_no = caption(scene), int(rng.integers(5))
            for h in hypotheses(scene, rng):
                rec = _record(
                    image_id, caption_no, premise, h, _annotators(h.label, rng, 1 if split == "train" else 5)
                )
                lines.append(json.dumps(rec))
                rows[split].append((h, rec["pairID"]))
        start += n
        jsonl_path(root, split).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    first = next(iter(all_splits))
    majority = Counter(h.label for h, _ in rows[first]).most_common(1)[0][0] if rows[first] else LABELS[0]
    summary: dict[str, Any] = {
        "seed": seed,
        "image_size": image_size,
        "splits": {
            s: {
                "images": all_splits[s],
                "pairs": len(r),
                "labels": dict(sorted(Counter(h.label for h, _ in r).items())),
                "templates": dict(sorted(Counter(f"{h.template}/{h.label}" for h, _ in r).items())),
            }
            for s, r in rows.items()
        },
        "chance": 1 / len(LABELS),
        "majority_label": majority,
        "majority_baseline": {
            s: float(np.mean([h.label == majority for h, _ in r])) if r else 0.0 for s, r in rows.items()
        },
        "hypothesis_only_baseline": _text_only_baseline(rows, first),
    }
    summary["baselines"] = {
        split: {
            "chance": summary["chance"],
            f"majority class ({majority})": summary["majority_baseline"][split],
            "hypothesis only (majority label of its template)": summary["hypothesis_only_baseline"][split],
        }
        for split in rows
    }
    template = {pid: h.template for r in rows.values() for h, pid in r}
    return {**summary, "template": template}
