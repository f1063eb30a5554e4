"""How the entries the county server sends (and the rare ones that renumber ops) fold into
the state: ``sync``, ``enroll``, ``rewind`` (FORMAT.md, "Journal entries"). A part of
``State`` (store/state.py), kept apart for size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schema import TYPES

if TYPE_CHECKING:
    from .state import State

    _Base = State
else:
    _Base = object


class EntriesMixin(_Base):
    def _apply_sync(self, entry: dict[str, Any]) -> None:
        """One answer of the county server (DESIGN §3.2), applied as one commit: versions of
        the ops it applied, the acknowledgement, others' changes with this device's unsent
        edits replayed on top, removals, refusals, the new cursor.

        Only the ops it names and the outbox are parsed (store/oplog.py)."""
        applied = entry.get("applied") or []
        if applied:
            self.log.ensure_from(min(int(seq) for seq, _ in applied))
            ops = self.log.parsed
            for dev_seq, server_seq in applied:
                i = self._index_of(dev_seq)
                if i < len(ops) and ops[i]["dev_seq"] == dev_seq:
                    op = ops[i]
                    versions = dict(self.versions.get(op["rec_id"], {}))
                    for name in op["set"]:
                        versions[name] = max(versions.get(name, 0), server_seq)
                    self.versions[op["rec_id"]] = versions
        self.meta["acked_dev_seq"] = entry["acked"]
        for old, new in (entry.get("aliases") or {}).items():
            self._apply_alias(old, new)
        pending: dict[str, list[dict[str, Any]]] = {}
        if entry.get("changes"):
            for op in self.outbox:
                pending.setdefault(op["rec_id"], []).append(op)
        for rec in entry.get("changes", []):
            self._apply_change(rec, pending.get(rec["id"], []))
        removes = entry.get("removes", [])
        for rec_id in removes:
            self.purge(rec_id)
        self._forget_ops_out_of_scope(removes)
        if entry.get("rejected"):
            self.meta["rejected"] = [*self.meta.get("rejected", []), *entry["rejected"]]
        for name in ("cursor", "epoch", "synced_at"):
            if name in entry:
                self.meta[name] = entry[name]

    def _forget_ops_out_of_scope(self, removes: list[str]) -> None:
        """This device's acknowledged ops on records that left its scope are not kept: they
        would hold the records' fields (names, ID numbers) after the records themselves were
        purged, and a county server restored from a backup could not take them back anyway
        (the records are outside the device's scope there too). Ops not yet acknowledged stay
        until they are: the server must see them, and refuse them, for the user to be told.
        ``meta["left_scope"]`` names the records that left with such ops still unsent; their
        ops go once acknowledged, unless the record came back into scope meanwhile."""
        gone = set(removes) | set(self.meta.get("left_scope", ()))
        if not gone:
            return
        # Most removals concern records this device never wrote: look before parsing the ops.
        if not any(op["rec_id"] in gone for op in self.log.parsed) and not any(
                self.log.text_contains(rid.encode()) for rid in gone):
            self.meta.pop("left_scope", None)
            return
        acked = int(self.meta.get("acked_dev_seq", 0))
        ops = self.log.materialize()
        kept, unsent = [], set()
        for op in ops:
            rec_id = op["rec_id"]
            if rec_id in gone and rec_id not in self.types:
                if op["dev_seq"] <= acked:
                    continue
                unsent.add(rec_id)
            kept.append(op)
        if len(kept) != len(ops):
            self.dropped_ops += len(ops) - len(kept)
            self.log.replace(kept)
        if unsent:
            self.meta["left_scope"] = sorted(unsent)
        else:
            self.meta.pop("left_scope", None)

    def _apply_change(self, rec: dict[str, Any], pending: list[dict[str, Any]]) -> None:
        """A record as the server has it replaces the local one; this device's edits that the
        server has not seen yet are replayed on top."""
        rec_id, type_name = rec["id"], rec["t"]
        if rec_id in self.types and self.types[rec_id] != type_name:
            self.purge(rec_id)
        old = self.get(rec_id, include_deleted=True)
        rtype = TYPES[type_name]
        fields = {k: v for k, v in rec["f"].items() if k in rtype.by_name}
        cleared = {name: None for name in old or {} if name in rtype.by_name
                   and name not in fields}
        updated = rec.get("u") or rec["c"]
        self._apply_fields(rec_id, type_name, {**cleared, **fields}, updated, rec.get("d"),
                           created=rec["c"], updated=updated)
        if rec.get("m"):
            self.mine.add(rec_id)
        elif not pending:  # (its own unsent edits keep it this device's until they are sent)
            self.mine.discard(rec_id)
        versions = rec["v"]
        self.versions[rec_id] = (dict(versions) if isinstance(versions, dict)
                                 else dict.fromkeys(fields, versions))
        for op in pending:
            self.apply_op(op)

    def _apply_alias(self, old: str, new: str) -> None:
        """The county linked a record this device made to one it already had (a host
        registering the arrival of a member the county holds): references to it in this store
        point at the county's record, which arrives with the same answer. The ops stay as they
        were sent; the server maps them."""
        if old not in self.types:
            return
        for type_name, rtype in TYPES.items():
            refs = [f.name for f in rtype.fields if f.kind in ("ref", "refs", "absences")]
            for rec_id, doc in list(self.data[type_name].items()) if refs else ():
                changes: dict[str, Any] = {}
                for name in refs:
                    value = doc.get(name)
                    if value == old:
                        changes[name] = new
                    elif isinstance(value, list) and any(
                            v == old or (isinstance(v, dict) and v.get("member_id") == old)
                            for v in value):
                        changes[name] = [new if v == old else {**v, "member_id": new}
                                         if isinstance(v, dict) and v.get("member_id") == old
                                         else v for v in value]
                if changes:
                    self._rewrite(type_name, rec_id, changes)
        self.purge(old)
        self.rebuild_indexes()

    def _apply_enroll(self, entry: dict[str, Any]) -> None:
        """Enrollment: the organization made locally by ``init`` becomes the county's org for
        this device. References to it are rewritten in records and in the unsent ops (none has
        been sent yet), its own ops dropped and the rest renumbered densely from 1."""
        old, new = entry["old_org_id"], entry["org_id"]
        if old and old != new:
            for type_name, rtype in TYPES.items():
                refs = [f.name for f in rtype.fields if f.kind in ("ref", "refs")
                        and f.ref == "org"]
                for rec_id, doc in list(self.data[type_name].items()) if refs else ():
                    changes: dict[str, Any] = {}
                    for name in refs:
                        value = doc.get(name)
                        if value == old:
                            changes[name] = new
                        elif isinstance(value, list) and old in value:
                            changes[name] = [new if v == old else v for v in value]
                    if changes:
                        self._rewrite(type_name, rec_id, changes)
            self.purge(old)
        kept = []
        for op in self.log.materialize():
            if op["rec_id"] == old:
                continue
            changes = {}
            for name, value in op["set"].items():
                if value == old:
                    value = new
                elif isinstance(value, list) and old in value:
                    value = [new if v == old else v for v in value]
                changes[name] = value
            kept.append({**op, "set": changes, "dev_seq": len(kept) + 1})
        self.log.replace(kept)
        self.meta["dev_seq"] = len(kept)
        self.meta["acked_dev_seq"] = 0
        for name, value in entry["meta"].items():
            if value is None:
                self.meta.pop(name, None)
            else:
                self.meta[name] = value
        for rec in entry.get("orgs", []):
            self._apply_change(rec, [])

    def _apply_rewind(self, entry: dict[str, Any]) -> None:
        """The county server has this device's ops up to ``acked``, and from ``from`` on they
        differ from what this store holds: the store was restored from an older copy, or its
        journal lost a tail (DESIGN §3.2). This store's ops from ``from`` were never applied
        there: they are renumbered above ``acked`` and sent again; what the server holds of
        the other timeline comes back through the pull."""
        first, acked = int(entry["from"]), int(entry["acked"])
        self.log.ensure_from(first)
        i = self._index_of(first)
        moved = self.log.parsed[i:]
        self.log.replace_tail(i, [{**op, "dev_seq": acked + n} for n, op in enumerate(moved, 1)])
        self.meta["dev_seq"] = acked + len(moved)
        self.meta["acked_dev_seq"] = acked
