"""Checks of record fields that every reader makes: integer ids, text a tokenizer can take."""

from __future__ import annotations

from collections.abc import Container
from typing import Any


def is_int(x: Any) -> bool:
    """An integer id as JSON gives it (``True`` is not an id)."""
    return isinstance(x, int) and not isinstance(x, bool)


def text_problem(value: Any, where: str = "") -> str | None:
    """Where a record holds text that UTF-8 cannot encode (a lone surrogate, which JSON's
    ``"\\ud800"`` escape can produce and no tokenizer takes), as "field[k] holds ...", else None."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return f"{where or 'a text'} holds {value[e.start : e.end]!r}, which UTF-8 cannot encode"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        problem = text_problem(v, f"{where}[{k!r}]" if where else repr(k))
        if problem is not None:
            return problem
    return None


def id_problem(
    value: Any, seen: Container[Any] | tuple[Container[Any], ...], name: str, again: str = ""
) -> str | None:
    """A record's id must be an integer not seen before in its file (``again``: how to say it was)."""
    if not is_int(value):
        return f"needs an integer '{name}'"
    if any(value in s for s in (seen if isinstance(seen, tuple) else (seen,))):
        return again or f"duplicate {name}"
    return None
