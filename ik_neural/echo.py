"""Bad input quoted back in errors and logs, bounded: a 100 kB name must not make a 100 kB log line."""

from __future__ import annotations

from typing import Any, Sequence

ECHO_LIMIT = 120
"""Characters of an echoed value kept in a message; longer ones are cut, with their length."""


def echo(value: Any, limit: int = ECHO_LIMIT) -> str:
    """repr of ``value`` (a string, or anything else), cut to ``limit`` characters with its length."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def echo_list(values: Sequence[Any], limit: int = ECHO_LIMIT) -> str:
    """A list of values quoted as ``echo`` does, as a whole: the first items, then how many in all."""
    text = repr(list(values))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(values)} items)"
