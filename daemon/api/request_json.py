"""JSON from clients (request bodies, the `filters` query), decoded or refused with a 400.

Docker decodes with Go's encoding/json; the differences that matter here:
- Go nests at most 10,000 deep ("exceeded max depth"). Python's decoder recurses in C and raises
  RecursionError near 1,000, and every later walk over the value (validation, json.dumps of the
  state) recurses again, so we refuse far earlier: no Docker body is more than a few levels deep.
- Go reads invalid UTF-8 as U+FFFD; we refuse it with a clear message instead of guessing.
- A lone surrogate escape ("\\ud800") becomes U+FFFD in Go; Python would keep a string that cannot
  be encoded (exec arguments, paths), so we replace it the same way.
- Go has no NaN/Infinity and refuses numbers out of range of their field; Python would give floats
  that state files cannot round-trip, or raise ValueError past 4,300 digits.
"""

import json
import math
import re
from typing import Any

from daemon.errors import InvalidParameter

MAX_DEPTH = 64
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # Docker's widest integer fields are uint64
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN = 40  # characters of a refused number quoted back in the message


class _Refused(ValueError):
    """Raised from inside the decoder's hooks: json.loads lets it through unchanged."""


def _number(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _parse_int(text: str) -> int:
    # the digit count first: int() of more than 4,300 digits raises (and is slow before that)
    if len(text.lstrip("-")) > 20 or not _INT_MIN <= int(text) <= _INT_MAX:
        raise _Refused(f"invalid JSON: number {_number(text)} is out of range")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"invalid JSON: number {_number(text)} is out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise _Refused(f"invalid JSON: invalid character '{name[0]}' looking for beginning of value")


def _too_deep(value: Any) -> bool:
    """True when containers nest more than MAX_DEPTH deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_surrogates(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # one pass in C; fails on a surrogate
    except UnicodeEncodeError:
        return True
    return False


def _replace_surrogates(value: Any) -> Any:
    """Lone UTF-16 surrogates -> U+FFFD, as Go decodes them. Depth is already bounded."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def parse_json(raw: bytes | str) -> Any:
    """The decoded value, or InvalidParameter with words a client can act on."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidParameter(f"invalid JSON: invalid UTF-8 at byte offset {e.start}") from None
    else:
        text = raw
    try:
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except _Refused as e:
        raise InvalidParameter(str(e)) from None
    except RecursionError:
        raise InvalidParameter("invalid JSON: exceeded max depth") from None
    except json.JSONDecodeError as e:
        raise InvalidParameter(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if _too_deep(value):
        raise InvalidParameter("invalid JSON: exceeded max depth")
    if "\\u" in text and _has_surrogates(value):
        value = _replace_surrogates(value)
    return value
