"""Caption tokenizers of the COCO evaluation: Stanford PTBTokenizer (the jar, or a pure-Python follower).

Tokenization is part of the metric: the official tool runs PTBTokenizer 3.4.1 with
`-preserveLines -lowerCase` over all captions joined by newlines, then drops the tokens in
`PUNCTUATIONS`. Because the lexer reads one stream, a caption's last token can depend on the next
caption (an abbreviation before an uppercase word), so both tokenizers here take the captions in the
order the official tool sees them. Note that "-LRB-" is lowercased to "-lrb-" and so is *not* dropped.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vltasks.metrics.functional.caption._java import find_java, pycocoevalcap_file, run_java
from vltasks.metrics.functional.caption._ptb_rules import COMPILED

PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# characters the Java lexer treats as line ends: replaced by spaces so captions stay one per line
_LINE_BREAKS = re.compile("\r\n|[\r\n\u2028\u2029\u000b\u000c\u0085]")
# a plain word before a space or , ; : ! ? (nothing can match longer), or lone punctuation before a space
_FAST = re.compile(r"[A-Za-z]+(?=[ \t\n]|[,;:!?][ \t\n])|[,;:!?](?=[ \t\n])|\.(?=[ \t\n])(?![ \u00A0]\.)")
_ASSIMILATIONS = frozenset(["cannot", "gimme", "gonna", "gotta", "lemme", "wanna"])
_SPACES = re.compile(r"[ \t]+")


def _clean(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of captions, got a single string")
    return [_LINE_BREAKS.sub(" ", t) for t in texts]


def _scan(buf: str, end: int) -> list[str]:
    """PTB tokens of buf[:end]; buf continues with the next caption (trailing context only)."""
    out: list[str] = []
    pos = 0
    while pos < end:
        space = _SPACES.match(buf, pos)
        if space is not None:
            pos = space.end()
            continue
        fast = _FAST.match(buf, pos)
        if fast is not None and fast.group().lower() not in _ASSIMILATIONS:
            out.append(fast.group())
            pos = fast.end()
            continue
        best, best_len, action = None, 0, None
        for regex, act in COMPILED:
            m = regex.match(buf, pos)
            if m is not None and m.end() - pos > best_len:
                best, best_len, action = m, m.end() - pos, act
        if best is None:  # untokenizable character: the jar deletes it
            pos += 1
            continue
        tok = best.group("t") if "t" in best.re.groupindex else best.group()
        if action == "dup":  # abbreviation ending a sentence: token keeps its period, period repeated
            out.append(tok)
            pos += len(tok) - 1
        elif action == "acronym":  # "I." -> "I" "." ; "U.S." -> "U.S." "."
            out.append(tok[:-1] if len(tok) == 2 else tok)
            pos += len(tok) - 1
        elif isinstance(action, str):  # "split:k": emit the first k characters, rescan the rest
            k = int(action.split(":")[1])
            out.append(tok[:k])
            pos += k
        else:
            text = action(tok)
            if text is not None:
                out.append(text)
            pos += len(tok)
    return out


def _finish(tokens: list[str]) -> str:
    """Lowercase (as -lowerCase does, after normalization) and drop COCO's punctuation tokens."""
    return " ".join(w for w in (t.lower() for t in tokens) if w not in PUNCTUATIONS)


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """Pure-Python follower of the PTBTokenizer used by COCO; returns space-joined lowercase tokens.

    "don't" -> "do n't", "96%" -> "96 %". Agreement with the jar is measured in docs/metrics_caption.md.
    """
    lines = _clean(texts)
    out = []
    for i, line in enumerate(lines):
        following = "\n" + lines[i + 1] if i + 1 < len(lines) else "\n\n"  # end of input ends a sentence
        out.append(_finish(_scan(line + following, len(line))))
    return out


def ptb_tokenize_java(texts: Sequence[str], java: str = "java") -> list[str]:
    """The official tokenization: PTBTokenizer from pycocoevalcap's stanford-corenlp-3.4.1.jar."""
    lines = _clean(texts)
    if not lines:
        return []
    jar = pycocoevalcap_file("tokenizer", "stanford-corenlp-3.4.1.jar")
    exe = find_java(java, "the 'ptb-java' tokenizer")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "captions.txt"
        path.write_bytes("\n".join(lines).encode("utf-8"))
        cmd = ["-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
        stdout = run_java([*cmd, str(path)], exe).decode("utf-8")
    out_lines = stdout.split("\n")
    out_lines += [""] * (len(lines) - len(out_lines))
    return [
        " ".join(w for w in ln.rstrip().split(" ") if w not in PUNCTUATIONS) for ln in out_lines[: len(lines)]
    ]


def whitespace_tokenize(texts: Sequence[str]) -> list[str]:
    """The "none" tokenizer: captions are already tokenized (the metrics split them on spaces)."""
    return _clean(texts)


TOKENIZERS = {"ptb": ptb_tokenize, "ptb-java": ptb_tokenize_java, "none": whitespace_tokenize}


def tokenize_captions(
    preds: Sequence[str], refs: Sequence[Sequence[str]], tokenizer: str = "ptb"
) -> tuple[list[str], list[list[str]]]:
    """Tokenize predictions and references as COCOEvalCap does: two streams, references image by image."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {tokenizer!r}")
    fn = TOKENIZERS[tokenizer]
    flat = fn([r for rs in refs for r in rs])
    out_refs, start = [], 0
    for rs in refs:
        out_refs.append(flat[start : start + len(rs)])
        start += len(rs)
    return fn(list(preds)), out_refs
