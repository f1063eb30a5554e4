"""A sync request (DESIGN §3.2): authenticated and applied in one short serialized write
transaction, then answered from a consistent read of the database, which runs alongside other
devices' requests."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.ids import is_ulid

from ..protocol import CLOCK_WINDOW, SignedBy, unb64u, verify_signature
from . import db
from .county import Outcome, Refused, Tx, _audit, apply_op
from .db import devices, records
from .pull import pull
from .scope import REASONS

# Locked: a device's requests apply one after another (PostgreSQL; SQLite: db.write).
_DEVICE = select(devices).where(devices.c.device_id == bindparam("device_id")).with_for_update()
_NONCE = {name: dialect.insert(db.nonces).on_conflict_do_nothing()  # a replay inserts nothing
          .returning(db.nonces.c.nonce)
          for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_SEEN = update(devices).where(devices.c.device_id == bindparam("where_device_id"))


def authenticate(conn: Connection, signed: SignedBy, method: str, path: str,
                 body: bytes) -> Any:
    """The device row of a signed request, or Refused: unknown or revoked device, bad
    signature, a request too old or too new, a nonce seen before."""
    device = conn.execute(_DEVICE, {"device_id": signed.device_id}).first()
    if device is None:
        raise Refused(401, "unknown_device", "未登记的设备，请重新登记", "unknown device: enroll it again")
    if not verify_signature(unb64u(device.public_key), signed, method, path, body):
        raise Refused(401, "bad_signature", "请求签名无效", "the request signature is not valid")
    if device.status != "active":
        raise Refused(403, "revoked", "该设备已被县级管理员注销", "this device has been revoked")
    now = db.now()
    if abs(now - signed.created) > CLOCK_WINDOW:
        raise Refused(401, "stale", "请求时间与服务器相差过大，请校准本机时钟",
                      "the request's time is too far from the server's: check this computer's clock",
                      server_time=int(now))
    if len(signed.nonce) > 32 or conn.execute(_NONCE[conn.dialect.name], {
            "device_id": signed.device_id, "nonce": signed.nonce, "created": now}).first() is None:
        raise Refused(401, "replay", "重复的请求已被拒绝", "a replayed request was refused")
    if secrets.randbelow(200) == 0:  # now and then, forget nonces too old to be replayed
        conn.execute(delete(db.nonces).where(db.nonces.c.created < now - 3 * CLOCK_WINDOW))
    return device


def handle_sync(engine: Engine, signed: SignedBy, method: str, path: str, body: bytes,
                request: Any, client_version: str | None = None) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise Refused(400, "bad_request", "请求格式有误", "malformed request")
    ops_in = request.get("ops", [])
    cursor = request.get("cursor", 0)
    max_bytes = request.get("max_bytes", 256 * 1024)
    resend_from = request.get("resend_from")
    if (not isinstance(ops_in, list) or not _count(cursor) or not _count(max_bytes, 1024)
            or not (resend_from is None or _count(resend_from, 1))
            or not all(isinstance(op, dict) and _count(op.get("dev_seq"), 1) for op in ops_in)):
        raise Refused(400, "bad_request", "请求格式有误", "malformed request")
    max_bytes = min(max_bytes, 4 * 1024 * 1024)
    today = dt.date.today() + dt.timedelta(days=1)  # a device's day may start before ours
    outcome = Outcome()
    need_from = None
    # Authenticated before the writers' lock (taken by Tx, on the counter row): checking the
    # signature and the nonce need not hold every other device up. Lock order: the device's
    # row, then the counter; nothing takes them the other way round.
    with db.write(engine, serialize=False) as conn:
        device = authenticate(conn, signed, method, path, body)
        device_id = device.device_id
        tx = Tx(conn)
        applied_high = int(device.applied_dev_seq)
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
            result, reason, seq = apply_op(tx, op, device_id, device.org_id, outcome, today)
            rec_id = op.get("rec_id")
            _audit(conn, device_id, device.org_id, op, result, reason, seq,
                   tx.first_seq.get(rec_id, 0) if isinstance(rec_id, str) else 0)
            if result == "rejected":
                _refused(outcome, op, reason)
            else:
                outcome.applied.append([dev_seq, seq])
            applied_high = dev_seq
        tx.flush()
        recalled = _recall(conn, device_id, resent)
        conn.execute(_SEEN, {
            "where_device_id": device_id, "applied_dev_seq": applied_high, "last_seen": db.now(),
            "client_version": client_version or device.client_version})
        # Writers are serialized: every seq up to ours is committed with it, so the read below
        # answers up to here (what commits after it comes with the next sync).
        epoch, head = tx.epoch, tx.seq
    with db.read(engine) as conn:
        reset = request.get("epoch") not in (None, epoch) or cursor > head
        if reset:
            cursor = 0
        exclude = {rid: seq for rid, (prev, seq) in _own_writes(outcome, recalled).items()
                   if prev <= cursor and rid not in outcome.unclean}
        outcome.applied += [[d, s] for d, s in recalled["applied"]]
        changes, removes, new_cursor, more = pull(
            conn, device.org_id, cursor, head, max_bytes, exclude, outcome.unclean)
    response: dict[str, Any] = {
        "epoch": epoch, "acked": applied_high, "applied": outcome.applied,
        "rejected": outcome.rejected, "conflicts": outcome.conflicts, "changes": changes,
        "removes": removes, "cursor": new_cursor, "more": more}
    if need_from is not None:
        response["need_from"] = need_from
    if reset:
        response["reset"] = True
    return response


def _refused(outcome: Outcome, op: dict[str, Any], reason: str | None) -> None:
    code = (reason or "invalid").split(":", 1)[0]
    zh, en = REASONS.get(code, REASONS["invalid"])
    detail = reason.split(":", 1)[1] if reason and ":" in reason else ""
    outcome.rejected.append({
        "dev_seq": op["dev_seq"], "rec_id": _str_or_none(op.get("rec_id")),
        "type": _str_or_none(op.get("type")),
        "reason": code, "zh": zh, "en": f"{en}: {detail}" if detail else en,
        "set": op["set"] if isinstance(op.get("set"), dict) else None})
    if isinstance(op.get("rec_id"), str) and is_ulid(op["rec_id"]):
        outcome.unclean.add(op["rec_id"])


def _recall(conn: Connection, device_id: str, dev_seqs: list[int]) -> dict[str, Any]:
    """A request sent again after its answer was lost: what became of its ops the first time,
    so the device learns their versions without being sent back what it wrote."""
    if not dev_seqs:
        return {"applied": [], "writes": {}}
    rows = conn.execute(select(db.ops.c.dev_seq, db.ops.c.seq, db.ops.c.rec_id,
                               db.ops.c.outcome, db.ops.c.prev_seq).where(
        db.ops.c.device_id == device_id, db.ops.c.dev_seq.in_(dev_seqs))
        .order_by(db.ops.c.dev_seq)).all()
    applied, writes, clean = [], {}, {}
    for row in rows:
        if row.outcome == "applied" and row.seq is not None:
            applied.append((row.dev_seq, row.seq))
            first = writes.get(row.rec_id, (row.prev_seq or 0, 0))
            writes[row.rec_id] = (first[0], row.seq)
            clean.setdefault(row.rec_id, True)
        else:
            clean[row.rec_id] = False
    writes = {rid: w for rid, w in writes.items() if clean.get(rid)}
    return {"applied": applied, "writes": writes}


def _own_writes(outcome: Outcome, recalled: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """rec_id → (its seq before the device's writes, the seq of the device's last write)."""
    out = dict(recalled["writes"])
    for rid, (prev, seq) in outcome.own_writes.items():
        first_prev = out[rid][0] if rid in out else prev
        out[rid] = (first_prev, seq)
    return out


def _count(value: Any, least: int = 0) -> bool:
    """A JSON integer (a bool is not one) well inside what a BIGINT column holds."""
    return type(value) is int and least <= value < 2**53


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["authenticate", "handle_sync", "records"]
