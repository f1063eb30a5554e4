"""A sync request (DESIGN §3.2, §3.4): its signature checked on the bytes as received, in a
read, before the body is inflated or parsed and before any lock; then applied in one short
serialized write transaction (where the nonce is claimed, so a replay racing its original
applies nothing), then answered from a consistent read of the database, which runs alongside
other devices' requests."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.ids import Hlc, is_ulid
from store.scope import sees

from ..protocol import (
    CLOCK_WINDOW,
    SYNC_PATH,
    SignedBy,
    op_digest,
    unb64u,
    verify_signature,
)
from . import db, intake
from .county import Outcome, Refused, Rejection, apply_op, audit
from .db import devices, records
from .pull import pull
from .tx import Tx

_DEVICE = select(devices).where(devices.c.device_id == bindparam("device_id"))
# Locked: a device's requests apply one after another (PostgreSQL; SQLite: db.write).
_DEVICE_LOCKED = _DEVICE.with_for_update()
_NONCE = {name: dialect.insert(db.nonces).on_conflict_do_nothing()  # a replay inserts nothing
          .returning(db.nonces.c.nonce)
          for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_DEVICE_AND_SEEN = select(devices, exists().where(
    db.nonces.c.device_id == devices.c.device_id,
    db.nonces.c.nonce == bindparam("nonce")).label("seen")).where(
    devices.c.device_id == bindparam("device_id"))
_SEEN = update(devices).where(devices.c.device_id == bindparam("where_device_id"))
# How far ahead of the server's clock an op's HLC may be. Further ahead, it is taken as the
# server's clock when applied: a device's word cannot make its writes later than anyone's
# (a clock of ffff… won every conflict), and an honest device whose clock ran fast loses
# nothing. A request's own time is held to the same window.
HLC_SKEW = CLOCK_WINDOW


def authenticate(engine: Engine, signed: SignedBy, method: str, path: str,
                 body: bytes) -> Any:
    """The device row of a signed request, or Refused: unknown or revoked device, bad
    signature, a request too old or too new, a nonce seen before. In a read, holding no lock:
    ``body`` is the request's body as received, not yet inflated or parsed. The nonce is
    claimed later, in the write transaction (``_claim``)."""
    if len(signed.nonce) > 32:
        raise _replay()
    # One statement, outside any snapshot: what it reads is checked again under the device's
    # lock (_claim); this only keeps strangers and replays from reaching that lock.
    with engine.connect() as conn:
        device = conn.execute(_DEVICE_AND_SEEN, {"device_id": signed.device_id,
                                                 "nonce": signed.nonce}).first()
        if device is None:
            raise Refused(401, "unknown_device", "未登记的设备，请重新登记",
                          "unknown device: enroll it again")
        if not verify_signature(unb64u(device.public_key), signed, method, path, body):
            raise Refused(401, "bad_signature", "请求签名无效", "the request signature is not valid")
        if device.status != "active":
            raise _revoked()
        now = db.now()
        if abs(now - signed.created) > CLOCK_WINDOW:
            raise Refused(401, "stale", "请求时间与服务器相差过大，请校准本机时钟",
                          "the request's time is too far from the server's: check this "
                          "computer's clock", server_time=int(now))
        if device.seen:
            raise _replay()
    return device


def _claim(conn: Connection, signed: SignedBy, checked: Any) -> Any:
    """In the write transaction: the device's row, locked, still the one whose key verified the
    signature and still active; the request's nonce recorded — atomically, so of a request and
    its replay racing each other exactly one gets past here."""
    device = conn.execute(_DEVICE_LOCKED, {"device_id": signed.device_id}).first()
    if device is None or device.public_key != checked.public_key:
        raise Refused(401, "unknown_device", "未登记的设备，请重新登记", "unknown device: enroll it again")
    if device.status != "active":
        raise _revoked()
    now = db.now()
    if conn.execute(_NONCE[conn.dialect.name], {
            "device_id": signed.device_id, "nonce": signed.nonce, "created": now}).first() is None:
        raise _replay()
    if secrets.randbelow(200) == 0:  # now and then, forget nonces too old to be replayed
        conn.execute(delete(db.nonces).where(db.nonces.c.created < now - 3 * CLOCK_WINDOW))
    return device


def _revoked() -> Refused:
    return Refused(403, "revoked", "该设备已被县级管理员注销", "this device has been revoked")


def _replay() -> Refused:
    return Refused(401, "replay", "重复的请求已被拒绝", "a replayed request was refused")


def serve_sync(engine: Engine, signed: SignedBy, raw: bytes, encoding: str | None,
               client_version: str | None = None) -> dict[str, Any]:
    """``POST /v1/sync`` from the bytes as received, in a worker thread (DESIGN §3.4): the
    signature first, on those bytes; only then the body inflated within
    ``intake.MAX_SYNC_BODY`` and parsed within ``intake.MAX_DEPTH``; one batch of ops at most;
    then the sync itself."""
    device = authenticate(engine, signed, "POST", SYNC_PATH, raw)
    request = intake.read_json(raw, encoding, intake.MAX_SYNC_BODY)
    if isinstance(request, dict) and request.get("device_id") not in (None, signed.device_id):
        raise Refused(400, "bad_request", "设备编号不一致", "device id differs from the signer")
    intake.check_batch(request)
    return handle_sync(engine, signed, "POST", SYNC_PATH, raw, request, client_version,
                       checked=device)


def handle_sync(engine: Engine, signed: SignedBy, method: str, path: str, body: bytes,
                request: Any, client_version: str | None = None, *,
                checked: Any = None) -> dict[str, Any]:
    """A parsed sync request; ``checked``: the device row ``authenticate`` gave for it (else it
    is authenticated here)."""
    if checked is None:
        checked = authenticate(engine, signed, method, path, body)
    if not isinstance(request, dict):
        raise Refused(400, "bad_request", "请求格式有误", "malformed request")
    ops_in = request.get("ops", [])
    cursor = request.get("cursor", 0)
    max_bytes = request.get("max_bytes", 256 * 1024)
    resend_from = request.get("resend_from")
    head_in = request.get("head")
    if (not isinstance(ops_in, list) or not _count(cursor) or not _count(max_bytes, 1024)
            or not (resend_from is None or _count(resend_from, 1))
            or not (head_in is None or _count(head_in))
            or not all(isinstance(op, dict) and _count(op.get("dev_seq"), 1) for op in ops_in)):
        raise Refused(400, "bad_request", "请求格式有误", "malformed request")
    max_bytes = min(max_bytes, 4 * 1024 * 1024)
    today = dt.date.today() + dt.timedelta(days=1)  # a device's day may start before ours
    outcome = Outcome()
    need_from = None
    # Authenticated above, before any lock: a stranger's request never waits for, or holds,
    # the writers' lock. Lock order: the device's row, then the counter (taken by Tx); nothing
    # takes them the other way round.
    with db.write(engine, serialize=False) as conn:
        device = _claim(conn, signed, checked)
        device_id = device.device_id
        latest, now_hlc = _clock()
        tx = Tx(conn, device.org_id)
        tx.has_aliases = bool(device.has_aliases)
        applied_high = int(device.applied_dev_seq)
        rewound = _went_back(conn, device_id, ops_in, applied_high, head_in)
        if rewound is not None:
            conn.execute(_SEEN, {"where_device_id": device_id, "applied_dev_seq": applied_high,
                                 "last_seen": db.now(),
                                 "client_version": client_version or device.client_version,
                                 "has_aliases": bool(device.has_aliases)})
            return {"epoch": tx.epoch, "acked": applied_high, "applied": [], "rejected": [],
                    "conflicts": [], "changes": [], "removes": [], "cursor": cursor,
                    "more": True, "rewound": {"from": rewound, "acked": applied_high}}
        resent = [op["dev_seq"] for op in ops_in if op["dev_seq"] <= applied_high]
        if resend_from is not None and resend_from - 1 > applied_high:
            applied_high = resend_from - 1  # the device no longer has the ops in between
        for op in ops_in:
            dev_seq = op["dev_seq"]
            if dev_seq <= applied_high:
                continue  # already applied: a resent request changes nothing
            if dev_seq != applied_high + 1:
                need_from = applied_high + 1
                break
            result, rejection, seq = apply_op(tx, _bounded(op, latest, now_hlc), device_id,
                                              device.org_id, outcome, today)
            rec_id = op.get("rec_id")
            audit(conn, device_id, device.org_id, op, result, rejection, seq,
                  tx.first_seq.get(rec_id, 0) if isinstance(rec_id, str) else 0)
            if rejection is not None:
                _refused(outcome, op, rejection)
            elif result != "linked":
                outcome.applied.append([dev_seq, seq])
            applied_high = dev_seq
        linked = _check_links(tx, conn, device_id, device.org_id, outcome)
        _unchanged_for_device(tx, device.org_id, outcome)
        tx.flush()
        recalled = _recall(conn, device_id, resent, outcome)
        conn.execute(_SEEN, {
            "where_device_id": device_id, "applied_dev_seq": applied_high, "last_seen": db.now(),
            "client_version": client_version or device.client_version,
            "has_aliases": bool(tx.has_aliases)})
        # Writers are serialized: every seq up to ours is committed with it, so the read below
        # answers up to here (what commits after it comes with the next sync).
        epoch, head, subtree = tx.epoch, tx.seq, tx.subtree(device.org_id)
    with db.read(engine) as conn:
        reset = request.get("epoch") not in (None, epoch) or cursor > head
        if reset:
            cursor = 0
        exclude = {rid: seq for rid, (prev, seq) in _own_writes(outcome, recalled).items()
                   if prev <= cursor and rid not in outcome.unclean}
        outcome.applied += [[d, s] for d, s in recalled["applied"]]
        changes, removes, new_cursor, more = pull(
            conn, device.org_id, cursor, head, max_bytes, exclude, outcome.unclean, subtree)
    response: dict[str, Any] = {
        "epoch": epoch, "acked": applied_high, "applied": outcome.applied,
        "rejected": outcome.rejected, "conflicts": outcome.conflicts, "changes": changes,
        "removes": removes, "cursor": new_cursor, "more": more}
    aliases = {**recalled["aliases"], **linked}
    if aliases:
        response["aliases"] = aliases
    if need_from is not None:
        response["need_from"] = need_from
    if reset:
        response["reset"] = True
    return response


_STORED_DIGESTS = select(db.ops.c.dev_seq, db.ops.c.digest, db.ops.c.body).where(
    db.ops.c.device_id == bindparam("device_id"), db.ops.c.dev_seq.in_(bindparam(
        "dev_seqs", expanding=True)))


def _went_back(conn: Connection, device_id: str, ops_in: list[dict[str, Any]],
               applied_high: int, head: int | None) -> int | None:
    """Whether the device went back in time (DESIGN §3.2): an op under a number already applied
    that is not the op applied under it, or a device whose last op is below what was applied.
    Returns the first number from which the device's ops differ from the server's."""
    resent = [op for op in ops_in if op["dev_seq"] <= applied_high]
    if resent:
        stored = {row.dev_seq: row.digest or _digest_of_body(row.body) for row in conn.execute(
            _STORED_DIGESTS, {"device_id": device_id,
                              "dev_seqs": [op["dev_seq"] for op in resent]})}
        for op in sorted(resent, key=lambda o: o["dev_seq"]):
            known = stored.get(op["dev_seq"])
            if known is not None and known != op_digest(op):
                return int(op["dev_seq"])
    if head is not None and head < applied_high and not any(
            op["dev_seq"] > head for op in ops_in):
        return head + 1
    return None


def _digest_of_body(body: str) -> str | None:
    found = _loads(body)
    return op_digest(found) if found else None


def _loads(body: str) -> dict[str, Any]:
    try:
        found = json.loads(body)
    except (ValueError, TypeError):
        return {}
    return found if isinstance(found, dict) else {}


def _unchanged_for_device(tx: Tx, device_org: str, outcome: Outcome) -> None:
    """Records this request re-stamped only because their scope changed (a flow got a host: its
    member now reaches the host) are new to others, not to this device if it held them: it is
    not sent back what it has."""
    subtree = tx.subtree(device_org)
    for rec_id, (before, seq, old_anchors) in tx.restamped.items():
        if rec_id not in outcome.own_writes and old_anchors & subtree:
            outcome.own_writes[rec_id] = (before, seq)


def _check_links(tx: Tx, conn: Connection, device_id: str, device_org: str,
                 outcome: Outcome) -> dict[str, str]:
    """Records a device made that the county already had, now linked to them. A link stands
    only where the device may see the county's record (a host registering an arrival it now
    hosts); otherwise the op is refused as a duplicate, naming only the organization that holds
    the member."""
    subtree = tx.subtree(device_org)
    out: dict[str, str] = {}
    for dev_seq, old, new in outcome.linked:
        target = tx.load(new)
        if target is not None and sees(tx, target, subtree):
            out[old] = new
            outcome.unclean.add(new)  # the device receives what its own id now stands for
            continue
        holder = tx.id_number_holder(target.fields.get("id_number") or "", "") if (
            target is not None and target.type == "member") else None
        zh, en = holder or ("另一组织", "another organization")
        rejection = Rejection("duplicate", f"「身份证号」已登记：{zh}",
                              f"id_number is already registered: {en}", "id_number")
        conn.execute(update(db.ops).where(db.ops.c.device_id == device_id,
                                          db.ops.c.dev_seq == dev_seq)
                     .values(outcome="rejected", reason=rejection.audit()))
        outcome.rejected.append(_rejected_entry(dev_seq, old, target.type if target else None,
                                                rejection, None))
        outcome.unclean.add(old)
    return out


def _refused(outcome: Outcome, op: dict[str, Any], rejection: Rejection) -> None:
    outcome.rejected.append(_rejected_entry(
        op["dev_seq"], _str_or_none(op.get("rec_id")), _str_or_none(op.get("type")), rejection,
        op["set"] if isinstance(op.get("set"), dict) else None))
    if isinstance(op.get("rec_id"), str) and is_ulid(op["rec_id"]):
        outcome.unclean.add(op["rec_id"])


def _rejected_entry(dev_seq: int, rec_id: str | None, type_name: str | None,
                    rejection: Rejection, changes: dict[str, Any] | None) -> dict[str, Any]:
    return {"dev_seq": dev_seq, "rec_id": rec_id, "type": type_name, "reason": rejection.code,
            "field": rejection.field, "zh": rejection.zh, "en": rejection.en, "set": changes}


def _recall(conn: Connection, device_id: str, dev_seqs: list[int],
            outcome: Outcome) -> dict[str, Any]:
    """A request sent again after its answer was lost: what became of its ops the first time,
    so the device learns their versions without being sent back what it wrote, and hears again
    of the ones refused (it still holds them as it typed them)."""
    if not dev_seqs:
        return {"applied": [], "writes": {}, "aliases": {}}
    rows = conn.execute(select(db.ops.c.dev_seq, db.ops.c.seq, db.ops.c.rec_id,
                               db.ops.c.outcome, db.ops.c.prev_seq, db.ops.c.type,
                               db.ops.c.reason, db.ops.c.body).where(
        db.ops.c.device_id == device_id, db.ops.c.dev_seq.in_(dev_seqs))
        .order_by(db.ops.c.dev_seq)).all()
    applied, writes, clean = [], {}, {}
    outcomes = {row.dev_seq: row.outcome for row in rows}
    for row in rows:
        if row.outcome == "rejected":
            body = _loads(row.body)
            changes = body.get("set") if isinstance(body.get("set"), dict) else None
            outcome.rejected.append(_rejected_entry(row.dev_seq, row.rec_id, row.type,
                                                    Rejection.from_audit(row.reason), changes))
            if is_ulid(row.rec_id):
                outcome.unclean.add(row.rec_id)
        if row.outcome == "applied" and row.seq is not None:
            applied.append((row.dev_seq, row.seq))
            first = writes.get(row.rec_id, (row.prev_seq or 0, 0))
            writes[row.rec_id] = (first[0], row.seq)
            clean.setdefault(row.rec_id, True)
        else:
            clean[row.rec_id] = False
    writes = {rid: w for rid, w in writes.items() if clean.get(rid)}
    links = conn.execute(select(db.aliases.c.old_id, db.aliases.c.new_id, db.aliases.c.dev_seq)
                         .where(db.aliases.c.device_id == device_id,
                                db.aliases.c.dev_seq.in_(dev_seqs))).all()
    linked = {row.old_id: row.new_id for row in links if outcomes.get(row.dev_seq) == "linked"}
    return {"applied": applied, "writes": writes, "aliases": linked}


def _own_writes(outcome: Outcome, recalled: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """rec_id → (its seq before the device's writes, the seq of the device's last write)."""
    out = dict(recalled["writes"])
    for rid, (prev, seq) in outcome.own_writes.items():
        first_prev = out[rid][0] if rid in out else prev
        out[rid] = (first_prev, seq)
    return out


def _clock() -> tuple[str, str]:
    """(the latest HLC an op may carry, the server's clock as an HLC)."""
    now_ms = int(db.now() * 1000)
    return Hlc.encode(now_ms + HLC_SKEW * 1000, 0xFFFF), Hlc.encode(now_ms, 0)


def _bounded(op: dict[str, Any], latest: str, now_hlc: str) -> dict[str, Any]:
    """The op as applied: an HLC past ``latest`` becomes the server's clock. (The audit trail
    keeps the op as sent, and its digest, by which a resent op is known.) HLCs are 16 lowercase
    hex digits, which compare as strings in time order; any other is refused by apply_op."""
    hlc = op.get("hlc")
    if isinstance(hlc, str) and len(hlc) == 16 and hlc > latest and not hlc.strip(_HEX):
        return {**op, "hlc": now_hlc}
    return op


_HEX = "0123456789abcdef"


def _count(value: Any, least: int = 0) -> bool:
    """A JSON integer (a bool is not one) well inside what a BIGINT column holds."""
    return type(value) is int and least <= value < 2**53


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["authenticate", "handle_sync", "records", "serve_sync"]
