"""What the county server does with a request's body before any work (DESIGN §3.4).

A body is read whole as sent, within a cap (``MAX_SYNC_BODY``, ``MAX_ENROLL_BODY``); a sync
request's signature is checked on those bytes (it covers their SHA-256) before anything else;
only then is the body inflated, streaming and with the same cap on what comes out, and parsed,
with a cap on how deeply JSON may nest. Both run in a worker thread, never on the event loop. A sync request carries at most one batch
of ops (DESIGN §3.2: ≤ 64 KB as the device measures it, or one larger op alone), refused before
any of them is looked at.

Every refusal is a ``Refused``: a 4xx with a problem body ``{"error", "zh", "en"}``.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from ..protocol import MAX_OPS_BYTES
from .county import Refused

MAX_DEPTH = 32  # JSON nesting: a sync request needs 6 (request, ops, op, set, absences, entry)
MAX_OPS = 2_000  # ops in one request: a 64 KB batch holds a few hundred at most
MAX_ENROLL_BODY = 64 * 1024  # an enrollment request is a few hundred bytes
# A sync request, as sent and once inflated: one batch (≤ 64 KB of ops as the device counts
# them, at most ~192 KB as UTF-8, and the envelope) or one larger op alone (fields are bounded:
# the longest text is 8,000 characters). Parsing holds the interpreter's lock: a megabyte of
# JSON takes ~30 ms, the 4 MiB allowed before took ~0.15 s a request.
MAX_SYNC_BODY = 1024 * 1024

# A JSON string, escapes included: for text json.loads accepts, exactly the strings in it.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")


def too_large() -> Refused:
    return Refused(413, "too_large", "请求过大", "request too large")


def unreadable(why: str) -> Refused:
    return Refused(400, "bad_request", "请求内容无法解析", f"unreadable body: {why}")


def inflate(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as JSON text: inflated (``Content-Encoding: deflate``) without ever making more
    than ``limit`` bytes, or taken as it is (no encoding)."""
    if encoding and encoding.strip().lower() == "deflate":
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(raw, limit)
        except zlib.error as exc:
            raise unreadable(f"bad compressed body: {exc}") from None
        if inflater.unconsumed_tail:
            raise too_large()
        if not inflater.eof:
            raise unreadable("compressed body cut short")
        if inflater.unused_data:
            raise unreadable("bytes after the compressed body")
        return out
    if encoding and encoding.strip().lower() not in ("identity", ""):
        raise unreadable(f"unsupported content encoding {encoding[:40]!r}")
    if len(raw) > limit:
        raise too_large()
    return raw


def nests_deeper(text: bytes, limit: int) -> bool:
    """Whether ``text``, which ``json.loads`` accepted, nests deeper than ``limit`` (brackets
    that do not pair up count as deeper): strings are taken out, then all but the brackets
    (braces counted as brackets); each pass removes every innermost pair, so nesting of
    ``limit`` or less is gone after ``limit`` passes. A run of more than ``limit`` opening
    brackets ends it at once. Each pass is linear work in C.

    Only for text already parsed: in JSON every ``"`` outside a string opens one that closes,
    so taking strings out is one linear pass; in arbitrary bytes (``"`` followed by ``\\"``
    pairs to the end) every quote would start a scan to the end, which is quadratic — 64 KB
    of it took 10 s of CPU."""
    brackets = _STRING.sub(b"", text).translate(_AS_BRACKETS, _NOT_BRACKET)
    deep = b"[" * (limit + 1)
    for _ in range(limit):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets) or deep in shorter:
            return True
        brackets = shorter
    return bool(brackets)


def parse(text: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """JSON nested at most ``max_depth`` deep, or a 400. ``json.loads`` runs first: it refuses
    what is not JSON in linear time, and nesting past the interpreter's recursion limit with a
    ``RecursionError`` (at once: it goes no deeper than that limit); what it accepts is then
    measured by ``nests_deeper``."""
    try:
        data = json.loads(text.decode("utf-8"))
        if b"\\u" in text:  # no lone surrogate spelled as an escape
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise unreadable(f"JSON nested deeper than {max_depth}") from None
    except (ValueError, UnicodeError):
        raise unreadable("body is not JSON") from None
    if nests_deeper(text, max_depth):
        raise unreadable(f"JSON nested deeper than {max_depth}")
    return data


def read_json(raw: bytes, encoding: str | None, limit: int) -> Any:
    """The body's JSON: inflated within ``limit`` and parsed within ``MAX_DEPTH``. Call it in a
    worker thread; for a signed request, only once the signature holds."""
    return parse(inflate(raw, encoding, limit))


def check_batch(request: Any) -> None:
    """A sync request's ops are one batch as the device makes it (sync/client.py): at most
    ``MAX_OPS_BYTES`` of JSON, each op counted as ``json.dumps(op, ensure_ascii=False)`` plus
    one, unless it is one op alone; and never more than ``MAX_OPS`` ops."""
    ops = request.get("ops") if isinstance(request, dict) else None
    if not isinstance(ops, list) or len(ops) < 2:
        return  # none, one, or not a list (refused as malformed by handle_sync)
    if len(ops) > MAX_OPS:
        raise Refused(413, "too_many_ops", f"一次同步最多 {MAX_OPS} 条操作",
                      f"at most {MAX_OPS} ops in one sync request")
    size = 0
    for op in ops:
        size += len(json.dumps(op, ensure_ascii=False)) + 1
        if size > MAX_OPS_BYTES:
            raise Refused(413, "too_many_ops",
                          f"一次同步的操作不能超过 {MAX_OPS_BYTES // 1024} KB",
                          f"the ops of one sync request must not exceed "
                          f"{MAX_OPS_BYTES // 1024} KB")
