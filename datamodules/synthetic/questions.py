"""Questions about a synthetic scene, with true answers and noisy human-like annotators.

Format-free: VQAv2 (and later GQA-like writers) turn these ``QA`` records into official files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .world import COLORS, RELATIONS, SHAPES, Obj, Scene, describe

KINDS: tuple[str, ...] = ("color", "shape", "count", "exist", "position")
QUESTION_TYPE = {
    "color": "what color is the",
    "shape": "what shape is the",
    "count": "how many",
    "exist": "is there a",
    "position": "is the",
}
ANSWER_TYPE = {"color": "other", "shape": "other", "count": "number", "exist": "yes/no", "position": "yes/no"}
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
MARGIN = 8.0  # px between centres before a relation is asked about
KIND_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 2.0])  # order of KINDS
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")


@dataclass(frozen=True)
class QA:
    """One question about one scene with its true (canonical, lower-case) answer."""

    kind: str
    question: str
    answer: str

    @property
    def question_type(self) -> str:
        return QUESTION_TYPE[self.kind]

    @property
    def answer_type(self) -> str:
        return ANSWER_TYPE[self.kind]


def _pick(rng: np.random.Generator, items: list) -> object:
    return items[int(rng.integers(len(items)))]


def ask_color(scene: Scene, rng: np.random.Generator) -> QA | None:
    """'what color is the circle?' for a shape that occurs once."""
    cands = [o for o in scene.objects if scene.is_unique(o, ("shape",))]
    if not cands:
        return None
    o: Obj = _pick(rng, cands)  # type: ignore[assignment]
    return QA("color", f"what color is the {o.shape}?", o.color)


def ask_shape(scene: Scene, rng: np.random.Generator) -> QA | None:
    """'what shape is the red object?' for a colour that occurs once."""
    cands = [o for o in scene.objects if scene.is_unique(o, ("color",))]
    if not cands:
        return None
    o: Obj = _pick(rng, cands)  # type: ignore[assignment]
    return QA("shape", f"what shape is the {o.color} object?", o.shape)


def ask_count(scene: Scene, rng: np.random.Generator) -> QA:
    """All objects, objects of one colour, or objects of one shape (present attributes favoured)."""
    form = int(rng.integers(3))
    if form == 0:
        return QA("count", "how many shapes are there?", str(len(scene.objects)))
    present = sorted({o.color if form == 1 else o.shape for o in scene.objects})
    vocab = list(COLORS) if form == 1 else list(SHAPES)
    absent = [v for v in vocab if v not in present]
    value = str(_pick(rng, present if (rng.random() < 0.7 or not absent) else absent))
    if form == 1:
        return QA("count", f"how many {value} objects are there?", str(scene.count(color=value)))
    return QA("count", f"how many {value}s are there?", str(scene.count(shape=value)))


def ask_exist(scene: Scene, rng: np.random.Generator) -> QA:
    """'is there a blue square?', yes and no equally likely; a 'no' often shares one attribute."""
    present = {(o.color, o.shape) for o in scene.objects}
    if rng.random() < 0.5:
        color, shape = _pick(rng, sorted(present))  # type: ignore[misc]
        return QA("exist", f"is there a {color} {shape}?", "yes")
    absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
    near = [(c, s) for c, s in absent if any(c == pc or s == ps for pc, ps in present)]
    color, shape = _pick(rng, near if (near and rng.random() < 0.7) else absent)  # type: ignore[misc]
    return QA("exist", f"is there a {color} {shape}?", "no")


def ask_position(scene: Scene, rng: np.random.Generator) -> QA | None:
    """'is the red circle to the left of the green square?' with a clear margin; yes/no balanced."""
    uniq = [o for o in scene.objects if scene.is_unique(o)]
    facts = [
        (a, rel, b)
        for a in uniq
        for b in uniq
        if a is not b
        for rel, holds in RELATIONS.items()
        if holds(a, b, MARGIN)
    ]
    if not facts:
        return None
    a, rel, b = _pick(rng, facts)  # type: ignore[misc]
    answer = "yes" if rng.random() < 0.5 else "no"
    asked = rel if answer == "yes" else OPPOSITE[rel]
    phrase = f"to the {asked}" if asked in ("left of", "right of") else asked
    return QA("position", f"is the {describe(a)} {phrase} the {describe(b)}?", answer)


ASKERS = {
    "color": ask_color,
    "shape": ask_shape,
    "count": ask_count,
    "exist": ask_exist,
    "position": ask_position,
}


def generate_questions(scene: Scene, rng: np.random.Generator, min_q: int = 2, max_q: int = 4) -> list[QA]:
    """``min_q..max_q`` questions of distinct kinds, tried in weighted random order (infeasible skipped).

    Position questions are tried first more often, as one-object scenes cannot have them.
    """
    n = int(rng.integers(min_q, max_q + 1))
    out: list[QA] = []
    order = rng.choice(len(KINDS), size=len(KINDS), replace=False, p=KIND_WEIGHTS / KIND_WEIGHTS.sum())
    for i in order:
        qa = ASKERS[KINDS[int(i)]](scene, rng)
        if qa is not None:
            out.append(qa)
        if len(out) == n:
            break
    return out


def confuse(qa: QA, rng: np.random.Generator) -> str:
    """A plausible wrong answer: other colour/shape, neighbouring count, flipped yes/no."""
    if qa.kind == "color":
        return str(_pick(rng, [c for c in COLORS if c != qa.answer]))
    if qa.kind == "shape":
        return str(_pick(rng, [s for s in SHAPES if s != qa.answer]))
    if qa.kind == "count":
        n = int(qa.answer)
        return str(n + 1 if n == 0 or rng.random() < 0.5 else n - 1)
    return "no" if qa.answer == "yes" else "yes"


def surface_variant(answer: str, rng: np.random.Generator) -> str:
    """Another spelling that VQA normalization maps back to ``answer`` ("Yes", "two", "a circle")."""
    if answer.isdigit() and int(answer) < len(NUMBER_WORDS):
        return NUMBER_WORDS[int(answer)]
    if answer in SHAPES:
        return str(_pick(rng, [f"a {answer}", f"the {answer}", answer.capitalize()]))
    return str(_pick(rng, [answer.capitalize(), f"{answer}."]))


def annotate(
    qa: QA,
    rng: np.random.Generator,
    n: int = 10,
    p_true: float = 0.8,
    min_true: int = 6,
    p_variant: float = 0.04,
) -> list[tuple[str, str]]:
    """``n`` (answer, confidence) pairs from simulated annotators; at least ``min_true`` are right."""
    right = rng.random(n) < p_true
    wrong_idx = np.flatnonzero(~right)
    missing = min_true - int(right.sum())
    if missing > 0:
        right[rng.choice(wrong_idx, size=missing, replace=False)] = True
    out = []
    for ok in right:
        ans = qa.answer if ok else confuse(qa, rng)
        if rng.random() < p_variant:
            ans = surface_variant(ans, rng)
        probs = (0.85, 0.1, 0.05) if ok else (0.35, 0.45, 0.2)
        conf = ("yes", "maybe", "no")[int(rng.choice(3, p=probs))]
        out.append((ans, conf))
    return out


_ARTICLES = {"a", "an", "the"}


def normalize_answer(ans: str) -> str:
    """Light VQA-style normalization (lower case, no end period, number words to digits, no articles).

    For summaries only; the official normalization lives in ``vltasks.metrics``.
    """
    words = re.sub(r"[?!,;]", " ", ans.lower().strip()).rstrip(".").split()
    words = [str(NUMBER_WORDS.index(w)) if w in NUMBER_WORDS else w for w in words]
    return " ".join(w for w in words if w not in _ARTICLES)


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Official-style VQA accuracy: mean over the 10 leave-one-out subsets of min(1, matches / 3)."""
    pred = normalize_answer(prediction)
    gts = [normalize_answer(a) for a in answers]
    accs = []
    for i in range(len(gts)):
        matches = sum(1 for j, g in enumerate(gts) if j != i and g == pred)
        accs.append(min(1.0, matches / 3.0))
    return float(sum(accs) / len(accs))
