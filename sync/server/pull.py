"""What a device receives: the changes and removals in its scope after its cursor.

Each record goes out as the device may see it (DESIGN §3.3): ``"m": 1`` when the device's
organization made it (the ``writer`` side of ownership, which the device checks as the user
types), and a meeting's lists of people only as far as the device holds those members."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select

from store.schema import TYPES

from .db import anchors, records, scope_log
from .tx import SUBTREE, rec_of

PULL_CHUNK = 400

# Built once (see county.py): the records anchored in the device's subtree, and the changes and
# scope losses after a position.
_IN_SCOPE = select(anchors.c.rec_id).where(anchors.c.org_id.in_(SUBTREE))
_CHANGES = (select(records).where(records.c.seq > bindparam("position"),
                                  records.c.seq <= bindparam("head"),
                                  or_(records.c.type == "org", records.c.rec_id.in_(_IN_SCOPE)))
            .order_by(records.c.seq).limit(PULL_CHUNK))
_LOST = (select(scope_log.c.rec_id, scope_log.c.seq).where(
    scope_log.c.seq > bindparam("position"), scope_log.c.seq <= bindparam("head"),
    scope_log.c.org_id.in_(SUBTREE)).order_by(scope_log.c.seq).limit(PULL_CHUNK))
_RECORD = select(records).where(records.c.rec_id == bindparam("rec_id"))
_VISIBLE = select(anchors.c.org_id).where(anchors.c.rec_id == bindparam("rec_id"),
                                          anchors.c.org_id.in_(SUBTREE)).limit(1)


def pull(conn: Connection, device_org: str, cursor: int, head: int, max_bytes: int,
         exclude: Mapping[str, int], force: Iterable[str], subtree: set[str] | None = None,
         ) -> tuple[list[dict[str, Any]], list[str], int, bool]:
    """Changes and removals in the device's scope after ``cursor`` up to ``head``, oldest first,
    up to about ``max_bytes``. Returns (changes, removes, new cursor, more).

    ``exclude`` maps records this device itself wrote to the seq of that write: such a record is
    left out only while it is still at that seq (nobody changed it since). ``force`` are records
    the device must receive whatever its cursor (it wrote them and was refused)."""
    view = View(conn, device_org, subtree)
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
                data = view.wire(item)
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
            changes.append(view.wire(row))
        else:
            removes.append(rec_id)
    return changes, removes, position, more


def _visible(conn: Connection, rec_id: str, device_org: str) -> bool:
    """Is ``rec_id`` anchored at an organization in ``device_org``'s subtree."""
    return conn.execute(_VISIBLE, {"rec_id": rec_id, "org_id": device_org}).first() is not None


class View:
    """Records as one device may see them."""

    def __init__(self, conn: Connection, device_org: str, subtree: set[str] | None) -> None:
        self.conn = conn
        self.device_org = device_org
        self.subtree = subtree if subtree is not None else set(
            conn.execute(SUBTREE, {"org_id": device_org}).scalars())
        self._visible: dict[str, bool] = {}

    def visible(self, rec_id: str) -> bool:
        if rec_id not in self._visible:
            self._visible[rec_id] = _visible(self.conn, rec_id, self.device_org)
        return self._visible[rec_id]

    def wire(self, row: Any) -> dict[str, Any]:
        rec = rec_of(row)
        for name in TYPES[rec.type].scope.people:
            if rec.fields.get(name):
                shown = [item for item in rec.fields[name] if self.visible(
                    item["member_id"] if isinstance(item, dict) else item)]
                if shown:
                    rec.fields[name] = shown
                else:
                    del rec.fields[name]
        data = rec.wire()
        if rec.writer_org_id in self.subtree:
            data["m"] = 1
        return data
