"""What the run store can hold of a JSON value: its size (limits on payloads and metadata)
and whether it holds text Postgres refuses in jsonb — a NUL character (refused in text
columns too) or a lone surrogate (half of a UTF-16 pair, which Python strings can hold).

Such a value must be refused where it is made — at the trigger, at the metadata call, when
an attempt returns its output — with an error naming where it is: refused later, by the
statement that ends an attempt, it would fail the run only after its hooks had run.
Diagnostic text (log lines, error messages) is kept instead (``diagnostic_text``): both
written as text, and a string too long to be read cut short, saying how much was cut.
"""

from __future__ import annotations

from typing import Any

from .errors import OutputTooLargeError, UnstorableValueError
from .store.engine import dumps

_NUL = "\x00"
_NUL_MESSAGE = "contains a NUL character (\\u0000), which the run store cannot hold"
_SURROGATE_MESSAGE = "contains a lone surrogate (half of a UTF-16 pair), which is not text"


def storable_json_size(value: Any, what: str) -> int:
    """Bytes of ``value`` as stored JSON; raises ``UnstorableValueError`` naming the first
    string (key or value) Postgres would refuse, ``what`` being the value's name. The search
    runs only when the JSON text shows an escaped NUL or surrogate (orjson writes neither
    for good text; the stdlib fallback escapes every non-ASCII character), so the common
    case is two substring tests on text that is made anyway."""
    text = dumps(value)
    if "\\u0000" in text or "\\ud" in text:
        found = _bad_path(value, what)
        if found is not None:
            raise UnstorableValueError(f"{found[0]} {found[1]}")
    return len(text.encode())


def check_json_size(
    value: Any, what: str, limit: int, error: type[Exception] = OutputTooLargeError
) -> None:
    """``storable_json_size``, and ``error`` for a value over ``limit`` bytes: the one check
    behind every size limit (a payload, metadata, an output, a step's result, a token's
    data), made where the value is made, before the store, the hooks or a waiting run."""
    size = storable_json_size(value, what)
    if size > limit:
        raise error(f"{what} is {size} bytes, larger than the {limit} byte limit")


def text_flaw(text: str) -> str | None:
    """Why the store cannot hold ``text`` ("contains a NUL character …"), or None."""
    if _NUL in text:
        return _NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_MESSAGE
    return None


def _bad_path(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        flaw = text_flaw(value)
        return (path, flaw) if flaw else None
    if isinstance(value, dict):
        for k, v in value.items():
            flaw = text_flaw(k) if isinstance(k, str) else None
            if flaw:
                return f"{path} (a key)", flaw
            found = _bad_path(v, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _bad_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


#: Longest string kept in a log line, its attributes or an error message: Trigger.dev's
#: limit on an attribute value. A task that logs a whole file or a driver that quotes a
#: huge statement in its error would otherwise put megabytes in every copy of the line.
MAX_DIAGNOSTIC_CHARS = 131_072


def diagnostic_text(value: Any) -> Any:
    """``value`` as the store keeps a log line, its attributes or an error message: every
    NUL and lone surrogate in its strings (keys too) written as text (``\\u0000``,
    ``\\ud800``), and a string over ``MAX_DIAGNOSTIC_CHARS`` cut to that many characters
    plus a note of how many more there were."""
    if isinstance(value, str):
        return _escaped(clip_text(value, MAX_DIAGNOSTIC_CHARS))
    if isinstance(value, dict):
        return {diagnostic_text(k): diagnostic_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [diagnostic_text(v) for v in value]
    return value


def clip_text(text: str, limit: int, *, sep: str = "", tail: str = "") -> str:
    """``text`` cut to ``limit`` characters, then ``sep`` and "… [N more characters``tail``]"
    (diagnostic text here; a value on a dashboard page)."""
    over = len(text) - limit
    if over <= 0:
        return text
    return f"{text[:limit]}{sep}… [{over:,} more characters{tail}]"


def _escaped(text: str) -> str:
    if _NUL in text:
        text = text.replace(_NUL, "\\u0000")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: written as \udXXX
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
