"""What a device receives: the changes and removals in its scope after its cursor."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select

from .county import _SUBTREE, _rec, wire
from .db import anchors, records, scope_log

PULL_CHUNK = 400

# Built once (see county.py): the records anchored in the device's subtree, and the changes and
# scope losses after a position.
_IN_SCOPE = select(anchors.c.rec_id).where(anchors.c.org_id.in_(_SUBTREE))
_CHANGES = (select(records).where(records.c.seq > bindparam("position"),
                                  records.c.seq <= bindparam("head"),
                                  or_(records.c.type == "org", records.c.rec_id.in_(_IN_SCOPE)))
            .order_by(records.c.seq).limit(PULL_CHUNK))
_LOST = (select(scope_log.c.rec_id, scope_log.c.seq).where(
    scope_log.c.seq > bindparam("position"), scope_log.c.seq <= bindparam("head"),
    scope_log.c.org_id.in_(_SUBTREE)).order_by(scope_log.c.seq).limit(PULL_CHUNK))
_RECORD = select(records).where(records.c.rec_id == bindparam("rec_id"))
_VISIBLE = select(anchors.c.org_id).where(anchors.c.rec_id == bindparam("rec_id"),
                                          anchors.c.org_id.in_(_SUBTREE)).limit(1)


def pull(conn: Connection, device_org: str, cursor: int, head: int, max_bytes: int,
         exclude: Mapping[str, int], force: Iterable[str],
         ) -> tuple[list[dict[str, Any]], list[str], int, bool]:
    """Changes and removals in the device's scope after ``cursor`` up to ``head``, oldest first,
    up to about ``max_bytes``. Returns (changes, removes, new cursor, more).

    ``exclude`` maps records this device itself wrote to the seq of that write: such a record is
    left out only while it is still at that seq (nobody changed it since). ``force`` are records
    the device must receive whatever its cursor (it wrote them and was refused)."""
    changes: list[dict[str, Any]] = []
    removes: list[str] = []
    size = 0
    position = cursor
    more = False
    seen: set[str] = set()
    while True:
        window = {"position": position, "head": head, "org_id": device_org}
        rows = conn.execute(_CHANGES, window).all()
        lost = conn.execute(_LOST, window).all()
        items: list[tuple[int, str, Any]] = [(r.seq, "c", r) for r in rows]
        items += [(row.seq, "r", row.rec_id) for row in lost]
        items.sort(key=lambda i: i[0])
        if not items:
            position = head
            break
        # Only items below both chunks' ends are complete: cut at the smaller end.
        limit_seq = head
        if len(rows) == PULL_CHUNK:
            limit_seq = min(limit_seq, rows[-1].seq)
        if len(lost) == PULL_CHUNK:
            limit_seq = min(limit_seq, lost[-1].seq)
        stopped = False
        for seq, kind, item in items:
            if seq > limit_seq:
                break
            if kind == "c":
                if exclude.get(item.rec_id) == item.seq:
                    position = seq
                    continue
                data = wire(_rec(item))
                cost = len(json.dumps(data, ensure_ascii=False)) + 1
                if changes and size + cost > max_bytes:
                    stopped = True
                    break
                changes.append(data)
                seen.add(item.rec_id)
                size += cost
            else:
                if item in seen or _visible(conn, item, device_org):
                    position = seq
                    continue
                if item not in removes:
                    removes.append(item)
                    size += len(item) + 3
            position = seq
        if stopped:
            more = True
            break
        if limit_seq >= head:
            position = head
            break
        position = limit_seq
    for rec_id in force:
        if rec_id in seen or rec_id in removes:
            continue
        row = conn.execute(_RECORD, {"rec_id": rec_id}).first()
        if row is not None and (row.type == "org" or _visible(conn, rec_id, device_org)):
            changes.append(wire(_rec(row)))
        else:
            removes.append(rec_id)
    return changes, removes, position, more


def _visible(conn: Connection, rec_id: str, device_org: str) -> bool:
    """Is ``rec_id`` anchored at an organization in ``device_org``'s subtree."""
    return conn.execute(_VISIBLE, {"rec_id": rec_id, "org_id": device_org}).first() is not None
