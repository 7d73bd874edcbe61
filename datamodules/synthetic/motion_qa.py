"""Questions on the synthetic world in motion, shared by the video QA writers (MSRVTT-QA, MSVD-QA,
ActivityNet-QA, TGIF-QA, NExT-QA), and the baselines that need no motion.

Three forms of one question set (datamodules/synthetic/motion.py draws the clips):

- open-ended: `motion.questions` (which way a shape moves, which shape appeared first, the colour
  of the one that appeared last, how many times a shape blinks);
- multiple choice with 5 candidates: what a shape does (``action``: moves one of 4 ways or blinks
  1-3 times), which shape appeared first / second (``transition``: both shapes of the clip among
  the candidates, so the middle frame, which shows both, cannot tell), how many times a shape
  blinks (``count``);
- counts: how many times a shape blinks (1..3), for regression.

The baselines are computed on each evaluated split (synthetic_meta.json keeps them): chance, the
most frequent training answer, and the answer from one frame (`OneFrameAnswerer`: the middle frame,
what it shows of the named shape and which shapes are in view, learned from the training split).
The questions are built so that one frame cannot tell: halfway through, both shapes of an order
clip are in view, a mover's place tells at most its axis, and a blinker may be in view or not
whatever its count.
Candidate order is drawn per question, so no position carries the answer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .motion import DIRECTIONS, FPS, FRAMES, NUMBER_WORDS, Clip, questions, sample_clips
from .world import COLORS, SHAPES, image_rng
from .writers import WorldSpec

CHOICES = 5
ACTIONS = (
    *(
        f"moves {'upwards' if d == 'up' else 'downwards' if d == 'down' else f'to the {d}'}"
        for d in DIRECTIONS
    ),
    *(f"blinks {w}" for w in NUMBER_WORDS.values()),
)
COUNT_WORDS = ("never", *NUMBER_WORDS.values(), "four times")
NAMES = tuple(f"{c} {s}" for c in COLORS for s in SHAPES)


@dataclass(frozen=True)
class VideoQuestion:
    """One question on one clip: its text, answer, family, and (multiple choice) the candidates."""

    clip: Clip
    question: str
    answer: str
    family: str  # open: direction / order / count (motion.questions); choice: action / transition / count
    candidates: tuple[str, ...] = ()

    @property
    def label(self) -> int:
        return self.candidates.index(self.answer)


def split_clips(world: WorldSpec) -> dict[str, list[Clip]]:
    """The clips of every split (labelled, then test), their video ids numbered across splits."""
    out, start = {}, 0
    for split, n in world.all_splits.items():
        out[split] = sample_clips(world.seed, range(start, start + n), world.image_size, distinct=False)
        start += n
    return out


def open_questions(clips: Iterable[Clip]) -> list[VideoQuestion]:
    return [VideoQuestion(c, q, a, t) for c in clips for q, a, t in questions(c)]


def count_questions(clips: Iterable[Clip]) -> list[VideoQuestion]:
    """How many times the blinking shape blinks (the answer as a number: "1".."3")."""
    return [q for q in open_questions(clips) if q.family == "count"]


def _candidates(
    rng: np.random.Generator, answer: str, must: Sequence[str], pool: Sequence[str]
) -> tuple[str, ...]:
    """The answer, ``must`` (distractors that have to be there) and others from ``pool``: 5, shuffled."""
    fixed = list(dict.fromkeys([answer, *must]))
    rest = [p for p in pool if p not in fixed]
    picked = [rest[int(i)] for i in rng.choice(len(rest), CHOICES - len(fixed), replace=False)]
    out = fixed + picked
    return tuple(out[int(i)] for i in rng.permutation(CHOICES))


def choice_questions(clip: Clip, seed: int) -> list[VideoQuestion]:
    """The clip's multiple-choice questions (5 candidates each, order drawn per question)."""
    rng = image_rng(seed, clip.video_id, 21)
    a = clip.actors[0]
    if clip.kind == "order":
        first, second = a.name, clip.actors[1].name
        return [
            VideoQuestion(
                clip,
                "which shape appears first",
                first,
                "transition",
                _candidates(rng, first, [second], NAMES),
            ),
            VideoQuestion(
                clip,
                "which shape appears second",
                second,
                "transition",
                _candidates(rng, second, [first], NAMES),
            ),
        ]
    if clip.kind == "move":
        answer = ACTIONS[list(DIRECTIONS).index(clip.facts["direction"])]
    else:
        answer = f"blinks {NUMBER_WORDS[clip.facts['blinks']]}"
    out = [
        VideoQuestion(
            clip, f"what does the {a.name} do", answer, "action", _candidates(rng, answer, [], ACTIONS)
        )
    ]
    if clip.kind == "blink":
        times = NUMBER_WORDS[clip.facts["blinks"]]
        q = f"how many times does the {a.name} blink"
        out.append(VideoQuestion(clip, q, times, "count", _candidates(rng, times, [], COUNT_WORDS)))
    return out


def choice_questions_of(clips: Iterable[Clip], seed: int, families: Sequence[str]) -> list[VideoQuestion]:
    return [q for c in clips for q in choice_questions(c, seed) if q.family in families]


# -- baselines ------------------------------------------------------------------------------------
ORDER_FAMILIES = ("order", "transition")  # which of two shapes came first: both are in the middle frame
MOVER_FAMILIES = ("direction", "action")  # where the asked-about shape is says something of its motion
NEIGHBOURS = 15  # training questions a one-frame answerer compares a position with


def middle_view(clip: Clip) -> tuple[bool, float, float]:
    """What the middle frame shows of the shape a question names (the clip's first): in view or
    not, and its centre (0, 0 when out of view)."""
    f = FRAMES // 2
    actor = clip.actors[0]
    if not actor.visible[f]:
        return False, 0.0, 0.0
    cx, cy = actor.at(f).center
    return True, float(cx), float(cy)


def in_view(clip: Clip) -> set[str]:
    """Shape, colour and name of every shape in the middle frame: what an order question's answer
    can be, seen from that frame."""
    f = FRAMES // 2
    objs = [a.at(f) for a in clip.actors if a.visible[f]]
    return {v for o in objs for v in (o.shape, o.color, f"{o.color} {o.shape}")}


def question_form(q: VideoQuestion) -> str:
    """What a one-frame answerer groups questions by: the text of an order question (it names no
    shape), else the family (the text names the clip's shape)."""
    return q.question if q.family in ORDER_FAMILIES else q.family


class OneFrameAnswerer:
    """The answer from the middle frame alone, learned from the training questions: the trivial
    baseline a model that needs no motion would reach.

    It sees what that frame shows and a clip's event does not: whether the named shape is in view
    (a blinker may be off), where it is (a horizontal mover sits in the middle columns halfway
    through, a vertical one in the middle rows) and which shapes are there (an order question's
    answer is one of the two). It answers with the most frequent training answer among the
    ``NEIGHBOURS`` training questions of the same form whose named shape is seen alike (position
    for movers, nearest first), restricted to what the frame allows; ties are scored as a random
    pick among them (their expected accuracy); an order question's two shapes are one such tie.
    """

    def __init__(self, train: Sequence[VideoQuestion]) -> None:
        self.answers: dict[str, Counter] = defaultdict(Counter)
        self.seen: dict[tuple[str, bool], list[tuple[float, float, str]]] = defaultdict(list)
        for q in train:
            form, (visible, x, y) = question_form(q), middle_view(q.clip)
            self.answers[form][q.answer] += 1
            self.seen[(form, visible)].append((x, y, q.answer))

    def options(self, q: VideoQuestion) -> set[str]:
        """The answers the frame leaves: the candidates (multiple choice) or the training answers of
        the same form, narrowed to what is in view for an order question."""
        allowed = set(q.candidates) if q.candidates else set(self.answers[question_form(q)])
        if q.family in ORDER_FAMILIES:
            allowed = (allowed & in_view(q.clip)) or allowed
        return allowed or {q.answer}

    def votes(self, q: VideoQuestion) -> Counter:
        """The training answers of the questions seen alike (none for an order question: its two
        shapes are drawn alike, so which came first is a coin toss from one frame)."""
        form, (visible, x, y) = question_form(q), middle_view(q.clip)
        if q.family in ORDER_FAMILIES:
            return Counter()
        seen = self.seen.get((form, visible), [])
        if q.family in MOVER_FAMILIES and visible:
            seen = sorted(seen, key=lambda s: (s[0] - x) ** 2 + (s[1] - y) ** 2)[:NEIGHBOURS]
        return Counter(a for _, _, a in seen)

    def hit(self, q: VideoQuestion) -> float:
        """The expected accuracy on ``q``: 1 / (tied best options) when the answer is among them."""
        options, votes = self.options(q), self.votes(q)
        fallback = self.answers[question_form(q)] if q.family not in ORDER_FAMILIES else Counter()
        scores = {o: (votes[o], fallback[o]) for o in options}
        best = max(scores.values())
        tied = [o for o, s in scores.items() if s == best]
        return (q.answer in tied) / len(tied)


def one_frame_baselines(
    train: Sequence[VideoQuestion], evaluated: Sequence[VideoQuestion], what: str = "", by_family: bool = True
) -> dict[str, float]:
    """The one-frame answerer's accuracy over ``evaluated``, and per family when there are several
    (``by_family``; NExT-QA names its own types instead)."""
    answerer = OneFrameAnswerer(train)
    hits = [(q.family, answerer.hit(q)) for q in evaluated]
    tag = f" ({what})" if what else ""
    out = {f"accuracy, the answer from one frame (no motion){tag}": _mean(h for _, h in hits)}
    families = sorted({f for f, _ in hits})
    if by_family and len(families) > 1:
        for family in families:
            out[f"accuracy, the answer from one frame (no motion), {family} questions{tag}"] = _mean(
                h for f, h in hits if f == family
            )
    return out


def open_baselines(train: Sequence[Clip], evaluated: Sequence[Clip], what: str = "") -> dict[str, float]:
    """Accuracy of chance (a random training answer), of the most frequent training answer, and of
    the answer from one frame (`OneFrameAnswerer`), overall and per question family."""
    train_qs, asked = open_questions(train), open_questions(evaluated)
    answers = Counter(q.answer for q in train_qs)
    top = answers.most_common(1)[0][0] if answers else ""
    tag = f" ({what})" if what else ""
    return {
        f"accuracy, chance: one of the {len(answers)} training answers{tag}": 1.0 / max(len(answers), 1),
        f"accuracy, always {top!r}, the most frequent training answer{tag}": _mean(
            q.answer == top for q in asked
        ),
        **one_frame_baselines(train_qs, asked, what),
    }


def choice_baselines(
    train: Sequence[VideoQuestion], evaluated: Sequence[VideoQuestion], what: str = "", by_family: bool = True
) -> dict[str, float]:
    """Chance (1/5), the candidate most often right in training (ties: a random pick among them),
    and the answer from one frame (`OneFrameAnswerer`, choosing among the candidates)."""
    by_answer: Counter = Counter(q.answer for q in train)

    def most_often_right(q: VideoQuestion) -> float:
        best = max(by_answer[c] for c in q.candidates)
        tied = [c for c in q.candidates if by_answer[c] == best]
        return (q.answer in tied) / len(tied)

    tag = f" ({what})" if what else ""
    return {
        f"accuracy, chance: 1 of {CHOICES} candidates{tag}": 1.0 / CHOICES,
        f"accuracy, the candidate most often right in training{tag}": _mean(
            most_often_right(q) for q in evaluated
        ),
        **one_frame_baselines(train, evaluated, what, by_family),
    }


def count_baselines(train: Sequence[VideoQuestion], evaluated: Sequence[VideoQuestion]) -> dict[str, float]:
    """MSE of the integer answer (TGIF-QA's measure, rounded half to even as the metric rounds):
    always the training mean count, and the mean count of the training clips whose blinking shape
    the middle frame shows alike (in view or not: all one frame tells of a count)."""
    mean = _mean(int(q.answer) for q in train)
    by_view: dict[bool, list[int]] = defaultdict(list)
    for q in train:
        by_view[middle_view(q.clip)[0]].append(int(q.answer))

    def mse(guesses: Iterable[float]) -> float:
        return _mean((round(g) - int(q.answer)) ** 2 for g, q in zip(guesses, evaluated))

    one_frame = (_mean(by_view.get(middle_view(q.clip)[0]) or [mean]) for q in evaluated)
    return {
        "count MSE, always the training mean (rounded)": mse(mean for _ in evaluated),
        "count MSE, the answer from one frame (no motion): the mean count of training clips whose "
        "shape the middle frame shows alike": mse(one_frame),
    }


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values)) / len(values) if values else 0.0


# -- files ----------------------------------------------------------------------------------------
def write_gif(path: Path, frames: Sequence[Image.Image], fps: int = FPS) -> None:
    """An animated GIF as TGIF ships its clips: every frame kept (noise makes no two alike, which
    PIL would otherwise merge), looping, ``1/fps`` s per frame (GIF counts in 1/100 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=list(frames[1:]), duration=1000 // fps, loop=0)


def train_split(world: WorldSpec) -> str:
    """The training split's name: ``train`` (any case) if written, else the first labelled split."""
    return next((s for s in world.splits if s.lower() == "train"), next(iter(world.splits)))


def evaluated(world: WorldSpec, clips: dict[str, list[Clip]]) -> Iterable[tuple[str, list[Clip]]]:
    """(split, clips) of each labelled split other than the training one: where baselines are measured."""
    train = train_split(world)
    return ((s, c) for s, c in clips.items() if s != train and s in world.splits)


def summary(
    world: WorldSpec, counts: dict[str, dict[str, int]], baselines: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """What every video QA writer returns (and synthetic_meta.json keeps)."""
    return {
        "seed": world.seed,
        "image_size": world.image_size,
        "splits": counts,
        "baselines": baselines,
        **extra,
    }
