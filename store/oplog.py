"""This device's ops, kept as text until something needs them (FORMAT.md, "The state").

A snapshot holds the ops one per line, ``[\\n op,\\n op,\\n … op\\n]`` (still one JSON array, so
any JSON reader takes it). Opening keeps that text as it is; the ops are parsed from its end
only as far as something needs them (the outbox, the ops a sync answer acknowledges), from its
front only as far as pruning reaches, and whole only for the rare operations that need every op
(enrollment, a removal that touches this device's own ops, ``ops`` for tests and ``doctor``).
A store offline for months can hold 200,000 ops: parsing them all at every unlock after a sync
cost most of a second.

A snapshot written before this layout holds the array on one line; it is parsed whole the first
time an op is needed, and the next compaction writes the new layout.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

SEP = b",\n"


def dumps(data: Any) -> bytes:
    # compact, and no raw newline can occur: JSON escapes it inside strings
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


F = TypeVar("F", bound=Callable[..., Any])


def _serialized(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: OpLog, *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


class OpLog:
    """The ops in dev_seq order: ``_text[_lo:_hi]`` (unparsed, one op per line, joined by
    ``,\\n``) followed by ``_parsed``."""

    def __init__(self, text: bytes = b"[]") -> None:
        # Parsing on demand changes the log even for a reader (``State.outbox``): one at a time.
        self._mutex = threading.RLock()
        self._text = b""
        self._lo = self._hi = 0
        self._parsed: list[dict[str, Any]] = []
        self._legacy: bytes | None = None
        stripped = text.strip()
        if stripped == b"[]":
            return
        if text.startswith(b"[\n") and text.endswith(b"\n]"):
            self._text, self._lo, self._hi = text, 2, len(text) - 2
        else:
            self._legacy = text  # one line, as written before: parsed whole when needed

    # -- inspection --------------------------------------------------------------------------
    @property
    def parsed(self) -> list[dict[str, Any]]:
        """The parsed tail (every op once ``materialize`` ran)."""
        return self._parsed

    def has_text(self) -> bool:
        return self._lo < self._hi or self._legacy is not None

    def text_contains(self, needle: bytes) -> bool:
        if self._legacy is not None:
            return needle in self._legacy
        return self._text.find(needle, self._lo, self._hi) >= 0

    @_serialized
    def all(self) -> list[dict[str, Any]]:
        """Every op, parsed afresh (the log keeps its text as it is)."""
        return self._parse_text() + self._parsed

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.all())

    # -- parsing on demand -------------------------------------------------------------------
    def _parse_text(self) -> list[dict[str, Any]]:
        if self._legacy is not None:
            return list(json.loads(self._legacy))
        if self._lo >= self._hi:
            return []
        return list(json.loads(b"[" + self._text[self._lo:self._hi] + b"]"))

    @_serialized
    def materialize(self) -> list[dict[str, Any]]:
        """Parse every op; afterwards ``parsed`` holds them all."""
        if self.has_text():
            self._parsed = self._parse_text() + self._parsed
            self._legacy, self._text, self._lo, self._hi = None, b"", 0, 0
        return self._parsed

    @_serialized
    def ensure_from(self, dev_seq: int) -> None:
        """Parse from the end until every op numbered ``dev_seq`` or above is in ``parsed``."""
        if self._parsed and int(self._parsed[0]["dev_seq"]) < dev_seq:
            return
        if self._legacy is not None:
            self.materialize()
            return
        moved: list[dict[str, Any]] = []
        text, lo, hi = self._text, self._lo, self._hi
        while lo < hi:
            cut = text.rfind(SEP, lo, hi)
            start = lo if cut < 0 else cut + len(SEP)
            op = json.loads(text[start:hi])
            if int(op["dev_seq"]) < dev_seq:
                break
            moved.append(op)
            hi = lo if cut < 0 else cut
        if moved:
            moved.reverse()
            self._parsed[:0] = moved
            self._hi = hi

    @_serialized
    def prune_front(self, drop: Callable[[dict[str, Any]], bool]) -> int | None:
        """Drop ops from the front while ``drop(op)`` holds; returns the dev_seq below which
        every op is now gone (None if none was dropped)."""
        if self._legacy is not None:
            self.materialize()
        boundary = None
        text, lo, hi = self._text, self._lo, self._hi
        while lo < hi:
            cut = text.find(SEP, lo, hi)
            end = hi if cut < 0 else cut
            op = json.loads(text[lo:end])
            if not drop(op):
                self._lo = lo
                return boundary
            boundary = int(op["dev_seq"]) + 1
            lo = hi if cut < 0 else cut + len(SEP)
        self._lo = lo
        cut = 0
        while cut < len(self._parsed) and drop(self._parsed[cut]):
            boundary = int(self._parsed[cut]["dev_seq"]) + 1
            cut += 1
        if cut:
            self._parsed = self._parsed[cut:]
        return boundary

    def drop_below(self, boundary: int, like: OpLog | None = None) -> None:
        """Forget every op numbered below ``boundary`` (what a compaction pruned from the copy
        ``like`` it wrote): without parsing when the text is still the one ``like`` shares."""
        with self._mutex:
            if like is not None and self._legacy is None and like._legacy is None and \
                    like._text is self._text and like._lo >= self._lo:
                # the copy was cut at an op boundary of the same text; ops past our end were
                # parsed into ``_parsed`` since, and are dropped from there below
                self._lo = min(like._lo, self._hi)
            elif self.has_text():
                self.prune_front(lambda op: int(op["dev_seq"]) < boundary)
            cut = 0
            while cut < len(self._parsed) and int(self._parsed[cut]["dev_seq"]) < boundary:
                cut += 1
            if cut:
                self._parsed = self._parsed[cut:]

    # -- changing ----------------------------------------------------------------------------
    @_serialized
    def append(self, op: dict[str, Any]) -> None:
        self._parsed.append(op)

    @_serialized
    def replace(self, ops: list[dict[str, Any]]) -> None:
        """Every op becomes ``ops`` (after ``materialize``)."""
        self._legacy, self._text, self._lo, self._hi = None, b"", 0, 0
        self._parsed = ops

    @_serialized
    def replace_tail(self, start: int, ops: list[dict[str, Any]]) -> None:
        """``parsed[start:]`` becomes ``ops``."""
        self._parsed = self._parsed[:start] + ops

    @_serialized
    def copy(self) -> OpLog:
        """A copy sharing the text and the op dicts (ops are never changed in place once
        logged, but by ``State.upgrade`` at open)."""
        out = OpLog()
        out._text, out._lo, out._hi, out._legacy = self._text, self._lo, self._hi, self._legacy
        out._parsed = list(self._parsed)
        return out

    # -- writing -----------------------------------------------------------------------------
    def pieces(self, per: int = 500) -> Iterator[bytes]:
        """The ops array as written in a snapshot, in pieces (none a long single call)."""
        if not self.has_text() and not self._parsed:
            yield b"[]"
            return
        yield b"[\n"
        first = True
        if self._legacy is not None:
            ops = json.loads(self._legacy)
            for start in range(0, len(ops), per):
                yield (b"" if first else SEP) + SEP.join(dumps(op) for op in ops[start:start + per])
                first = False
        elif self._lo < self._hi:
            step = 1 << 20
            for start in range(self._lo, self._hi, step):
                yield self._text[start:min(start + step, self._hi)]
            first = False
        parsed = self._parsed
        for start in range(0, len(parsed), per):
            yield (b"" if first else SEP) + SEP.join(dumps(op) for op in parsed[start:start + per])
            first = False
        yield b"\n]"

    def to_bytes(self) -> bytes:
        return b"".join(self.pieces())
