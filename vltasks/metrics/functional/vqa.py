"""VQA accuracy as the official VQAv2 evaluation computes it, vectorised.

Reproduces `vqaEval.py` (GT-Vision-Lab/VQA, 2021 "Fixed processing answers bug" version) and two
published variants, chosen with `protocol=`:

- ``"vqav2"`` (default, leaderboard): strip ``\\n``, ``\\t`` and spaces; only when the ground-truth
  answers of a question are not all identical, punctuation then digit/article processing on both
  the ground truth and the prediction (so "Yes" against ten "yes" scores 0).
- ``"lavis"`` (pre-2021 code, still in LAVIS): the prediction is always stripped and normalized; the
  ground truth gets punctuation processing only, and only when its answers differ.
- ``"evalai"`` (TextVQA / EvalAI, mmf's ``EvalAIAnswerProcessor``): both sides always normalized.
- ``"exact"`` (video QA: MSRVTT-QA, MSVD-QA, ActivityNet-QA, TGIF-QA FrameQA, one answer per
  question): 1 when the stripped prediction equals a ground-truth answer, else 0. The soft score
  cannot serve there: with a single answer its leave-one-out subsets are empty and it gives 0 (or
  1/3 in the ``n <= 1`` form), where those benchmarks report plain accuracy.

Score per question (all but ``"exact"``): mean over the leave-one-annotator-out subsets of
min(1, matches / 3).
Speed comes from normalizing each distinct string once and scoring all questions as int tensors.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain

import torch
from torch import Tensor

from vltasks.metrics.utilities import mean_or

PROTOCOLS = ("vqav2", "lavis", "evalai", "exact")

# The official contractions map (2021 version, ASCII apostrophes), written as key=value pairs.
_CONTRACTIONS_TEXT = """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd
itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't
mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've
neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at
'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've
shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's
someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll
someones=someone's somethingd=something'd somethingd've=something'd've something'dve=something'd've
somethingll=something'll thats=that's thered=there'd thered've=there'd've there'dve=there'd've
therere=there're theres=there's theyd=they'd theyd've=they'd've they'dve=they'd've theyll=they'll
theyre=they're theyve=they've twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've
werent=weren't whatll=what'll whatre=what're whats=what's whatve=what've whens=when's whered=where'd
wheres=where's whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's
whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't
wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll
yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
you'dve=you'd've youll=you'll youre=you're youve=you've
"""
CONTRACTIONS: dict[str, str] = dict(pair.split("=", 1) for pair in _CONTRACTIONS_TEXT.split())
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten"
NUMBER_MAP = {w: str(i) for i, w in enumerate(_NUMBER_WORDS.split())}
NUMBER_MAP["none"] = "0"
ARTICLES = frozenset(("a", "an", "the"))
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
               ",", "?", "!")  # fmt: skip
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_COMMA_STRIP_EVALAI = re.compile(r"(?<=\d)(,)+(?=\d)")
# The official code calls periodStrip.sub("", text, re.UNICODE): re.UNICODE (32) lands in `count`.
_PERIOD_COUNT = int(re.UNICODE)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _punctuation(text: str, comma_strip: re.Pattern = _COMMA_STRIP) -> str:
    out = text
    has_number_comma = comma_strip.search(text) is not None
    for p in PUNCTUATION:
        if has_number_comma or p + " " in text or " " + p in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, _PERIOD_COUNT)


def _digit_article(text: str) -> str:
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


@lru_cache(maxsize=1 << 20)
def normalize_vqa_answer(answer: str, protocol: str = "vqav2") -> str:
    """Full normalization of one answer (clean, punctuation, digits/articles) as `protocol` does it.

    ``"vqav2"`` and ``"lavis"`` share this processing (they differ in *when* they apply it);
    ``"evalai"`` first lowercases, drops "," and "?", splits "'s", and uses its own comma rule.
    """
    if protocol == "evalai":
        text = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
        return _digit_article(_punctuation(_clean(text), _COMMA_STRIP_EVALAI))
    return _digit_article(_punctuation(_clean(answer)))


def _check(preds: Sequence[str], answers: Sequence[Sequence[str]], protocol: str) -> list[int]:
    """Validates the inputs; returns the number of GT answers of each question."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown VQA protocol {protocol!r}; expected one of {PROTOCOLS}")
    if isinstance(preds, str) or len(preds) != len(answers):
        raise ValueError(f"need one prediction per question: got {len(preds)} predictions "
                         f"and {len(answers)} answer lists")  # fmt: skip
    lengths = list(map(len, answers))
    if (lengths and min(lengths) == 0) or any(isinstance(a, str) for a in answers):
        bad = next(i for i, a in enumerate(answers) if isinstance(a, str) or len(a) == 0)
        raise ValueError(f"question {bad}: answers must be a non-empty list of strings, got {answers[bad]!r}")
    return lengths


def _intern(strings: list[str]) -> tuple[Tensor, list[str]]:
    """Int64 id of each string and the distinct strings, with C-speed loops (dict, map, array)."""
    table = dict.fromkeys(strings)
    for i, key in enumerate(table):
        table[key] = i
    return torch.frombuffer(array("q", map(table.__getitem__, strings)), dtype=torch.long), list(table)


@lru_cache(maxsize=1 << 20)
def _forms(s: str, protocol: str) -> tuple[str, str, str, str, str]:
    """(decides "identical", GT if identical, GT if not, pred if identical, pred if not) for one string."""
    if protocol == "evalai":
        norm = normalize_vqa_answer(s, "evalai")
        return s, norm, norm, norm, norm
    if protocol == "exact":
        clean = _clean(s)
        return clean, clean, clean, clean, clean
    full = normalize_vqa_answer(s)
    if protocol == "vqav2":
        clean = _clean(s)
        return clean, clean, full, clean, full
    return s, s, _punctuation(s), full, full  # lavis: raw GT; GT punctuation only; pred always normalized


def clear_caches() -> None:
    """Forget normalized strings (the caches make repeated evaluations fast; benchmarks clear them)."""
    normalize_vqa_answer.cache_clear()
    _forms.cache_clear()


def vqa_scores(preds: Sequence[str], answers: Sequence[Sequence[str]], protocol: str = "vqav2") -> Tensor:
    """Per-question VQA accuracy in [0, 1] (float64, shape [N]); answer lists may differ in length."""
    lengths = torch.tensor(_check(preds, answers, protocol), dtype=torch.long)
    n = len(preds)
    if n == 0:
        return torch.zeros(0, dtype=torch.float64)
    flat_gt = list(chain.from_iterable(answers))
    ids, distinct = _intern(flat_gt + list(preds))
    flat_forms = list(chain.from_iterable(_forms(s, protocol) for s in distinct))
    lookup, _ = _intern(flat_forms)  # one id space: equal ids <=> equal strings
    lookup = torch.cat([lookup.view(-1, 5), torch.full((1, 5), -1)])  # row -1: padding
    width = int(lengths.max())
    if bool((lengths == width).all()):
        gt_raw = ids[: len(flat_gt)].view(n, width)
    else:
        row = torch.repeat_interleave(torch.arange(n), lengths)
        starts = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        col = torch.arange(len(flat_gt)) - starts
        gt_raw = torch.full((n, width), -1, dtype=torch.long)
        gt_raw[row, col] = ids[: len(flat_gt)]
    valid = gt_raw >= 0
    pred_raw = ids[len(flat_gt) :]
    key = lookup[gt_raw, 0]
    differ = ((key != key[:, :1]) & valid).any(1)
    gt = torch.where(differ[:, None], lookup[gt_raw, 2], lookup[gt_raw, 1])
    pred = torch.where(differ, lookup[pred_raw, 4], lookup[pred_raw, 3])
    match = (gt == pred[:, None]) & valid
    if protocol == "exact":
        return match.any(1).double()
    total = match.sum(1, keepdim=True)
    acc = torch.clamp((total - match.long()).double() / 3.0, max=1.0) * valid
    summed = acc[:, 0].clone()
    for j in range(1, width):  # left-to-right like the official sum(): identical floats
        summed += acc[:, j]
    return summed / lengths.double()


def vqa_accuracy(preds: Sequence[str], answers: Sequence[Sequence[str]], protocol: str = "vqav2") -> Tensor:
    """Mean VQA accuracy in [0, 1] (the official script prints 100x this, rounded to 2 decimals)."""
    return mean_or(vqa_scores(preds, answers, protocol))
