"""Record ids (ULID) and the hybrid logical clock that orders edits across devices."""

from __future__ import annotations

import os
import re
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


class UlidFactory:
    """Monotonic ULIDs: 48-bit milliseconds, 80 random bits; within one millisecond the random
    part is incremented so ids made by one device sort in the order they were made."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def __call__(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms <= self._last_ms:
            ms = self._last_ms
            rand = (self._last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        self._last_ms, self._last_rand = ms, rand
        value = (ms << 80) | rand
        return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


new_ulid = UlidFactory()


def is_ulid(text: str) -> bool:
    return ULID_RE.fullmatch(text) is not None


def ulid_bytes(text: str) -> bytes:
    value = 0
    for ch in text:
        value = value * 32 + CROCKFORD.index(ch)
    return value.to_bytes(17, "big")[1:]


class Hlc:
    """Hybrid logical clock (Kulkarni et al.): wall milliseconds plus a counter, so every edit a
    device makes is later than everything it has seen, even when its clock is behind.

    Encoded as 16 hex digits (12 for milliseconds, 4 for the counter) so strings compare in
    time order; ties between devices are broken by device id where it matters.
    """

    def __init__(self, last: str | None = None) -> None:
        self.ms, self.counter = self.parse(last) if last else (0, 0)

    @staticmethod
    def parse(text: str) -> tuple[int, int]:
        return int(text[:12], 16), int(text[12:16], 16)

    @staticmethod
    def encode(ms: int, counter: int) -> str:
        return f"{ms:012x}{counter:04x}"

    def now(self) -> str:
        wall = time.time_ns() // 1_000_000
        if wall > self.ms:
            self.ms, self.counter = wall, 0
        else:
            self.counter += 1
            if self.counter > 0xFFFF:
                self.ms, self.counter = self.ms + 1, 0
        return self.encode(self.ms, self.counter)

    def observe(self, other: str) -> None:
        """Move past a clock value received from elsewhere."""
        ms, counter = self.parse(other)
        if (ms, counter) > (self.ms, self.counter):
            self.ms, self.counter = ms, counter

    @property
    def last(self) -> str:
        return self.encode(self.ms, self.counter)


def hlc_to_datetime_text(value: str) -> str:
    """Local time of an HLC value, to the minute, for people."""
    ms, _ = Hlc.parse(value)
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))
