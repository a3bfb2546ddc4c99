"""Reading a brand's JSON request body as RFC 8259 JSON, within bounds.

Python's parser is lenient where the API must not be: it reads ``NaN`` and ``Infinity``
(not JSON), turns ``1e400`` into an infinity, and recurses once per level of nesting, so a
body of 100,000 brackets exhausts the stack. Here a body nested deeper than
``MAX_DEPTH`` is refused before it is parsed, and a number that JSON cannot carry
faithfully is read as a ``NonStandardNumber``, which no schema accepts: the validation
then names the field it was in.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting read (an interaction is 2 levels deep; this leaves room to grow).
MAX_DEPTH = 32
#: Integers longer than this are beyond 64 bits whatever their digits.
_MAX_INT_DIGITS = 20
#: A string token (its quotes inside escaped), running to the end when it is not closed,
#: or one bracket. Each character is read once: an unclosed string cannot make it slow.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.?)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)


class InvalidJson(ValueError):
    """The body is not JSON, or is nested too deeply; the message says which."""


class NonStandardNumber:
    """``NaN``, ``Infinity``, or a number out of range, as the body spelled it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings not counted)."""
    depth = deepest = 0
    for token in _TOKENS.findall(text):
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _constant(text: str) -> NonStandardNumber:
    return NonStandardNumber(text)


def _float(text: str) -> float | NonStandardNumber:
    value = float(text)
    return value if math.isfinite(value) else NonStandardNumber(text)


def _int(text: str) -> int | NonStandardNumber:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return NonStandardNumber(text)
    return int(text)


def read_json(raw: bytes) -> Any:
    """The value of the UTF-8 JSON text ``raw``; ``InvalidJson`` when it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("The request body is not UTF-8 text.") from None
    if nesting_depth(text) > MAX_DEPTH:
        raise InvalidJson(f"The request body is nested more than {MAX_DEPTH} levels deep.")
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except ValueError:
        raise InvalidJson("The request body is not JSON.") from None
