"""What the county admin does (``liudong admin``), and device enrollment.

The admin works on the database directly (``--db``), also while the server runs: every write
goes through the same serialized transactions as the server's own.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update

from store.errors import LiudongError
from store.ids import is_ulid
from store.orgs import org_tree
from store.stats import as_row, org_stats
from store.view import RecordView

from ..protocol import cert_fingerprint, enroll_proof, make_code, token_digest, unb64u
from . import db, identity
from .county import Refused, admin_put, live_records
from .db import anchors, devices, enroll_codes, org_closure, records
from .pull import View
from .tx import SUBTREE

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class AdminError(LiudongError):
    exit_code = 2


# -- organizations -------------------------------------------------------------------------------

def add_org(engine: Engine, fields: dict[str, Any]) -> str:
    return admin_put(engine, "org", fields)


def edit_org(engine: Engine, org_id: str, fields: dict[str, Any]) -> None:
    admin_put(engine, "org", fields, org_id)


def list_orgs(engine: Engine) -> list[dict[str, Any]]:
    """Organizations in tree order, each with its depth."""
    with db.read(engine) as conn:
        orgs = [{"id": r.rec_id, **r.fields} for r in live_records(conn, "org")]
    return [{**org, "depth": depth} for depth, org in org_tree(orgs)]


def send_task(engine: Engine, fields: dict[str, Any]) -> str:
    """County work dispatch (M-5.4): a task to one or more organizations."""
    return admin_put(engine, "task", fields)


# -- enrollment ----------------------------------------------------------------------------------

def make_enroll_code(engine: Engine, org_id: str, server_url: str, hours: float = 72,
                     tls_cert: str | None = None) -> dict[str, Any]:
    """A one-time code for a device of ``org_id``; only its digest is stored."""
    with db.read(engine) as conn:
        org = conn.execute(select(db.records.c.type).where(
            db.records.c.rec_id == org_id, db.records.c.deleted.is_(False))).first()
    if org is None or org.type != "org":
        raise AdminError(f"没有编号为 {org_id} 的组织", f"no organization has id {org_id}")
    if not 0 < hours <= 24 * 30:
        raise AdminError("有效期应在 30 天以内", "a code may be valid for at most 30 days")
    fingerprint = None
    if tls_cert:
        import ssl

        pem = Path(tls_cert).read_text()
        fingerprint = cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem))
    elif server_url.startswith("https://"):
        # the certificate `serve` serves; before the first `serve`, the one it will make
        last = identity.served(engine)
        fingerprint = last if last and last != identity.INSECURE else identity.pem_fingerprint(
            identity.self_signed(engine)[0])
    server_key = identity.identity(engine).public_key
    token = "".join(secrets.choice(CROCKFORD) for _ in range(20))
    grouped = "-".join(token[i:i + 4] for i in range(0, 20, 4))
    now = db.now()
    with db.write(engine) as conn:
        conn.execute(insert(enroll_codes).values(
            code_hash=token_digest(token), org_id=org_id, created_at=now,
            expires_at=now + hours * 3600))
    return {"code": make_code(grouped, server_url, server_key, fingerprint), "token": grouped,
            "org_id": org_id, "expires_at": now + hours * 3600, "server_url": server_url,
            "fingerprint": fingerprint, "server_key": server_key}


def enroll(engine: Engine, request: Any) -> dict[str, Any]:
    """A device enrolls with a one-time code: its public key is kept, nothing else.

    The request proves the device holds the private key. Sending the same enrollment again
    (a lost answer on a bad link) succeeds again; any other reuse of a code is refused."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(request, dict) or not all(isinstance(request.get(k), str) for k in (
            "token", "device_id", "public_key", "name", "proof")):
        raise Refused(400, "bad_request", "登记请求格式有误", "malformed enrollment request")
    device_id, name = request["device_id"], request["name"].replace("\x00", "")[:200]
    if not is_ulid(device_id):
        raise Refused(400, "bad_request", "设备编号格式有误", "malformed device id")
    store_id = request.get("store_id")
    if store_id is not None and not (isinstance(store_id, str) and is_ulid(store_id)):
        raise Refused(400, "bad_request", "登记请求格式有误", "malformed store id")
    try:
        public = unb64u(request["public_key"])
        Ed25519PublicKey.from_public_bytes(public).verify(
            unb64u(request["proof"]), enroll_proof(request["token"], device_id,
                                                   request["public_key"]))
    except (ValueError, InvalidSignature):
        raise Refused(400, "bad_proof", "登记请求的签名无效", "the enrollment proof is not valid") from None
    digest = token_digest(request["token"])
    now = db.now()
    with db.read(engine) as conn:  # a made-up token takes no lock (DESIGN §3.4)
        if conn.execute(select(enroll_codes.c.code_hash).where(
                enroll_codes.c.code_hash == digest)).first() is None:
            raise Refused(404, "unknown_code", "登记码不存在，请核对", "no such enrollment code: check it")
    with db.write(engine) as conn:
        code = conn.execute(select(enroll_codes).where(enroll_codes.c.code_hash == digest)).first()
        if code is None:
            raise Refused(404, "unknown_code", "登记码不存在，请核对", "no such enrollment code: check it")
        existing = conn.execute(select(devices).where(devices.c.device_id == device_id)).first()
        if code.used_at is not None:
            if not (code.used_by == device_id and existing is not None
                    and existing.public_key == request["public_key"]
                    and existing.status == "active"):
                raise Refused(410, "used_code", "登记码已被使用，请向县里申请新的登记码",
                              "the enrollment code was used already: ask the county for a new one")
        elif code.expires_at < now:
            raise Refused(410, "expired_code", "登记码已过期，请向县里申请新的登记码",
                          "the enrollment code has expired: ask the county for a new one")
        elif existing is not None and not (
                existing.public_key == request["public_key"] and existing.status == "active"
                and existing.org_id == code.org_id):
            raise Refused(409, "already_enrolled", "该设备已登记", "this device is enrolled already")
        elif existing is not None:
            # enrolled before answers were signed: a new code for its organization gives it the
            # server's key (the device proved it holds its own)
            conn.execute(update(enroll_codes).where(enroll_codes.c.code_hash == digest)
                         .values(used_at=now, used_by=device_id))
        else:
            org = conn.execute(select(db.records.c.county_id).where(
                db.records.c.rec_id == code.org_id)).first()
            conn.execute(insert(devices).values(
                device_id=device_id, org_id=code.org_id, county_id=org.county_id if org else None,
                public_key=request["public_key"], name=name, store_id=store_id,
                status="active", enrolled_at=now, applied_dev_seq=0))
            conn.execute(update(enroll_codes).where(enroll_codes.c.code_hash == digest)
                         .values(used_at=now, used_by=device_id))
        org_row = conn.execute(select(db.records.c.data).where(
            db.records.c.rec_id == code.org_id)).first()
        org_fields = json.loads(org_row.data) if org_row else {}
        epoch = db.get_meta(conn, "epoch")
    return {"device_id": device_id, "org_id": code.org_id, "org_name": org_fields.get("name"),
            "org_kind": org_fields.get("kind"), "epoch": epoch, "server_time": int(now)}


def list_devices(engine: Engine) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        names = {r.rec_id: r.fields.get("name") for r in live_records(conn, "org")}
        rows = conn.execute(select(devices).order_by(devices.c.enrolled_at)).all()
    return [{"device_id": r.device_id, "org_id": r.org_id, "org_name": names.get(r.org_id),
             "name": r.name, "status": r.status, "enrolled_at": r.enrolled_at,
             "last_seen": r.last_seen, "applied_dev_seq": r.applied_dev_seq,
             "client_version": r.client_version} for r in rows]


def revoke_device(engine: Engine, device_id: str) -> None:
    """The device is refused from now on; when it next connects it erases its keys."""
    with db.write(engine, serialize=False) as conn:  # the device's row only (see handle_sync)
        found = conn.execute(select(devices.c.status).where(
            devices.c.device_id == device_id)).first()
        if found is None:
            raise AdminError(f"没有编号为 {device_id} 的设备", f"no device has id {device_id}")
        conn.execute(update(devices).where(devices.c.device_id == device_id)
                     .values(status="revoked", revoked_at=db.now()))


# -- statistics ----------------------------------------------------------------------------------

# The records a device of an organization holds: every organization, and the records anchored
# in its subtree (as the pull sends them, pull.py), tombstones left out.
_IN_SCOPE = select(anchors.c.rec_id).where(anchors.c.org_id.in_(SUBTREE))
_VIEW_ROWS = select(records).where(records.c.deleted.is_(False), or_(
    records.c.type == "org", records.c.rec_id.in_(_IN_SCOPE)))


class _ScopeView(View):
    """The pull's view of records for one organization, with what it may see read at once
    (the pull asks per person; a statistics view asks about every member)."""

    def __init__(self, conn: Connection, org_id: str, subtree: set[str],
                 in_scope: set[str]) -> None:
        super().__init__(conn, org_id, subtree)
        self.in_scope = in_scope

    def visible(self, rec_id: str) -> bool:
        return rec_id in self.in_scope


def county_view(conn: Connection, org_id: str) -> RecordView:
    """The register as a device of ``org_id`` holds it after a full sync: the same records in
    the same wire form (a meeting's people only as far as they are in scope), folded into an
    in-memory ``State`` by the code a device folds a sync answer with (store/view.py)."""
    subtree = set(conn.execute(SUBTREE, {"org_id": org_id}).scalars())
    in_scope = set(conn.execute(_IN_SCOPE, {"org_id": org_id}).scalars())
    view = _ScopeView(conn, org_id, subtree, in_scope)
    return RecordView.of_records(org_id, (view.wire(row) for row in conn.execute(
        _VIEW_ROWS, {"org_id": org_id})))


# Column names ``admin stats --json`` gave before it shared its figures with the county screen,
# kept beside the shared ones because scripts read them (DESIGN §5: the command line is stable).
_EARLIER_NAMES = {"id": "org_id", "hosted": "inflow", "pending_report": "pending",
                  "lost_contact": "lost"}


def stats(engine: Engine, org_id: str | None = None,
          today: dt.date | None = None) -> list[dict[str, Any]]:
    """Per organization, counted on the spot (M-5.1) by the code the county screen runs
    (store/stats.py) over what a device of each root organization (or of ``org_id``) would
    hold; then the server's own columns: active devices and their last sync."""
    day = today or dt.date.today()
    with db.read(engine) as conn:
        if org_id is None:
            orgs = [{"id": r.rec_id, **r.fields} for r in live_records(conn, "org")]
            roots = [org["id"] for depth, org in org_tree(orgs) if depth == 0]
        else:
            roots = [org_id]
        views = [county_view(conn, root) for root in roots]
        closure: dict[str, list[str]] = {}
        for below, ancestor in conn.execute(select(org_closure.c.org_id,
                                                   org_closure.c.ancestor_id)):
            closure.setdefault(below, []).append(ancestor)
        device_rows = conn.execute(select(devices.c.org_id, devices.c.last_seen,
                                          devices.c.status)).all()
    # counted once the read has ended: a long read holds back SQLite's checkpoints
    rows = [as_row(s) for view in views for s in org_stats(view, day)]
    active: Counter[str] = Counter()
    last_seen: dict[str, float] = {}
    for device_org, seen, status in device_rows:
        if status != "active":
            continue
        for ancestor in closure.get(device_org, []):
            active[ancestor] += 1
            if seen and seen > last_seen.get(ancestor, 0):
                last_seen[ancestor] = seen
    for row in rows:
        row.update({old: row[new] for old, new in _EARLIER_NAMES.items()})
        row["devices"] = active[row["org_id"]]
        row["last_sync"] = last_seen.get(row["org_id"])
    return rows


# -- backup and restore --------------------------------------------------------------------------

BACKUP_FORMAT = "liudong-county-backup"


def backup(engine: Engine, out: Path, *, passphrase: str | None = None,
           recipient: bytes | None = None, kdf: Any = None) -> dict[str, int]:
    """A consistent copy while the server runs: every table read in one snapshot transaction,
    as JSON lines (the same for SQLite and PostgreSQL), sealed as it is written to a passphrase
    or to a recipient's X25519 public key (backup_crypto.py). Nothing readable reaches the disk,
    and ``out`` appears only once the backup is complete, fsynced and read back."""
    from . import backup_crypto

    if (passphrase is None) == (recipient is None):
        raise AdminError("备份须加密：给出备份口令或接收方公钥（二者选一）",
                         "a backup is encrypted: give a backup passphrase or a recipient's "
                         "public key (one of the two)")
    key_part, file_key = (backup_crypto.to_passphrase(passphrase, kdf) if passphrase is not None
                          else backup_crypto.to_recipient(recipient or b""))
    counts: dict[str, int] = {}
    with db.read(engine) as conn:
        version = db.schema_version(conn)
        writer = backup_crypto.BackupWriter(out, key_part, file_key, version)
        try:
            buffer = bytearray(_line({"format": BACKUP_FORMAT, "schema_version": version,
                                      "epoch": db.get_meta(conn, "epoch")}))
            for table in db.metadata.sorted_tables:
                n = 0
                for row in conn.execute(select(table)):
                    buffer += _line({"t": table.name, "r": _jsonable(row._asdict())})
                    n += 1
                    if len(buffer) >= 1 << 18:
                        writer.write(bytes(buffer))
                        buffer.clear()
                counts[table.name] = n
            writer.write(bytes(buffer + _line({"end": counts})))
        except BaseException:
            writer.abort()
            raise
    writer.commit()
    return counts


def restore(engine: Engine, source: Path, *, passphrase: str | None = None,
            private_key: bytes | None = None) -> dict[str, int]:
    """Load a backup into an empty database. The epoch changes, so every device notices the
    server went back in time and sends again what it no longer has (DESIGN §3.2).

    Order: the file's checksum and header (no key needed); the target is empty; the key (a
    wrong one is told apart from damage); then every chunk decrypted and authenticated and
    every row checked, before anything is written. The rows then go in as one transaction,
    read and authenticated again: a file changed in between rolls it back."""
    from . import backup_crypto

    with backup_crypto.open_backup(source) as sealed:
        if sealed.schema_version != db.SCHEMA_VERSION:
            raise AdminError("备份的数据库版本与本程序不符", "the backup's schema version differs")
        with db.read(engine) as conn:
            if _holds_data(conn):
                raise AdminError("目标数据库不是空的", "the target database is not empty")
        key = sealed.unlock(passphrase, private_key)
        for _ in _backup_rows(sealed, key):
            pass
        db.migrate(engine)
        with db.write(engine) as conn:
            if _holds_data(conn):
                raise AdminError("目标数据库不是空的", "the target database is not empty")
            conn.execute(db.meta.delete())
            conn.execute(db.counter.delete())
            counts: Counter[str] = Counter()
            batch: list[dict[str, Any]] = []
            table = None
            for row_table, row in _backup_rows(sealed, key):
                if batch and (row_table is not table or len(batch) >= 500):
                    conn.execute(insert(table), batch)
                    batch = []
                table = row_table
                batch.append(row)
                counts[row_table.name] += 1
            if batch:
                conn.execute(insert(table), batch)
            db.set_meta(conn, "epoch", os.urandom(8).hex())
    return dict(counts)


def _holds_data(conn: Any) -> bool:
    return any(conn.dialect.has_table(conn, t.name)
               and conn.execute(select(t).limit(1)).first() is not None
               for t in (db.records, devices))


def _backup_rows(sealed: Any, key: bytes) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The rows of a backup, each checked against the schema, and their count against the
    count the backup ends with."""
    from .backup_crypto import BadCountyBackup

    def bad(zh: str, en: str) -> BadCountyBackup:
        return BadCountyBackup(sealed.where, zh, en)

    lines = sealed.lines(key)
    counts: Counter[str] = Counter()
    try:
        first = json.loads(next(lines, b"null"))
        if not isinstance(first, dict) or first.get("format") != BACKUP_FORMAT:
            raise bad("内容不是县级服务器的备份", "does not hold a county server backup")
        if first.get("schema_version") != sealed.schema_version:
            raise bad("内容与文件头的数据库版本不符", "holds another schema version than its header")
        for line in lines:
            item = json.loads(line)
            if isinstance(item, dict) and set(item) == {"end"}:
                if next(lines, None) is not None:
                    raise bad("结尾之后还有内容", "has rows after its end")
                if item["end"] != {t.name: counts[t.name] for t in db.metadata.sorted_tables}:
                    raise bad("行数与结尾记录不符", "holds other row counts than it ends with")
                return
            table = db.metadata.tables.get(item.get("t")) if isinstance(item, dict) else None
            row = item.get("r") if table is not None else None
            if set(item) != {"t", "r"} or not isinstance(row, dict) or \
                    not set(row) <= set(table.c.keys()):
                raise bad("有一行不符合数据库结构", "holds a row that does not fit the schema")
            counts[table.name] += 1
            yield table, _from_json(table, row)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        raise bad("内容无法解析", "holds rows that cannot be parsed") from None
    raise bad("不完整（缺少结尾记录）", "is incomplete (its end record is missing)")


def _line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
            for k, v in row.items()}


def _from_json(table: Any, row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k in table.c}
