"""The county server's database: tables, migrations, engines (SQLAlchemy Core).

SQLite in WAL mode is the embedded default; PostgreSQL (psycopg 3) is the production engine.
Only portable SQL is used, and every table that would grow with a province carries the county
it belongs to, so the schema can move to a PostgreSQL-compatible distributed engine sharded by
county (DESIGN §3.5).

Writers are serialized: SQLite by ``BEGIN IMMEDIATE``, PostgreSQL by locking the one ``counter``
row. That is what makes ``server_seq`` commit in the order it is handed out, so a device's
cursor never skips a change committed late (a PostgreSQL sequence does not give this).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    false,
    insert,
    select,
    text,
    update,
)

metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
counter = Table(
    "counter", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)
records = Table(
    "records", metadata,
    Column("rec_id", String(26), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("county_id", String(26)),
    Column("parent_id", String(26)),  # member of a flow/contact…, subject of a conflict, task
    Column("data", Text, nullable=False),  # JSON: the fields
    Column("versions", Text, nullable=False),  # JSON: field → server_seq of its last write
    Column("hlcs", Text, nullable=False),  # JSON: field → HLC of its last write
    Column("created_at", String(16), nullable=False),
    Column("updated_at", String(16), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),  # server_seq of the last change
    Column("last_device", String(40)),
    Column("writer_org_id", String(26)),  # the organization whose device made it
    Index("ix_records_seq", "seq"),
    Index("ix_records_parent", "parent_id"),
    Index("ix_records_type", "type"),
)
anchors = Table(
    "anchors", metadata,
    Column("rec_id", String(26), primary_key=True),
    Column("org_id", String(26), primary_key=True),
    Index("ix_anchors_org", "org_id", "rec_id"),
)
scope_log = Table(
    "scope_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("rec_id", String(26), nullable=False),
    Column("org_id", String(26), nullable=False),
    Index("ix_scope_log_seq", "seq"),
)
org_closure = Table(
    "org_closure", metadata,
    Column("org_id", String(26), primary_key=True),
    Column("ancestor_id", String(26), primary_key=True),
    Column("depth", Integer, nullable=False),
    Index("ix_org_closure_ancestor", "ancestor_id"),
)
devices = Table(
    "devices", metadata,
    Column("device_id", String(26), primary_key=True),
    Column("org_id", String(26), nullable=False),
    Column("county_id", String(26)),
    Column("public_key", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("store_id", String(26)),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("enrolled_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_seen", Float),
    Column("applied_dev_seq", BigInteger, nullable=False),
    Column("client_version", String(40)),  # migration 2
    # migration 4: the device made records the county already had (the aliases table)
    Column("has_aliases", Boolean, nullable=False, server_default=false()),
)
enroll_codes = Table(
    "enroll_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("org_id", String(26), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    Column("used_by", String(26)),
)
ops = Table(  # the audit trail: who (device, org), when, what, and what became of it
    "ops", metadata,
    Column("device_id", String(40), primary_key=True),
    Column("dev_seq", BigInteger, primary_key=True),
    Column("county_id", String(26)),
    Column("org_id", String(26)),
    Column("seq", BigInteger),
    Column("rec_id", String(26), nullable=False),
    Column("type", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # applied | conflict | rejected
    Column("reason", Text),
    Column("prev_seq", BigInteger),  # migration 3: the record's seq before the request
    Column("digest", String(64)),  # migration 4: op_digest, to tell a device went back in time
    Index("ix_ops_rec", "rec_id"),  # migration 2
)
# One person, one record (DESIGN §2.2): a member's ID number is unique within a county.
id_numbers = Table(  # migration 4
    "id_numbers", metadata,
    Column("county_id", String(26), primary_key=True),  # "" outside any county
    Column("id_number", String(18), primary_key=True),
    Column("rec_id", String(26), nullable=False),
)
# A record a device made for one the county already had (a host registering the arrival of a
# member the county holds): the device's id stands for the county's from then on. A device's
# row says whether it has any, so a request of one that has none looks none up.
aliases = Table(  # migration 4
    "aliases", metadata,
    Column("old_id", String(26), primary_key=True),
    Column("new_id", String(26), nullable=False),
    Column("device_id", String(40), nullable=False),
    Column("dev_seq", BigInteger, nullable=False),
    Index("ix_aliases_device", "device_id", "dev_seq"),
)
nonces = Table(
    "nonces", metadata,
    Column("device_id", String(26), primary_key=True),
    Column("nonce", String(32), primary_key=True),
    Column("created", Float, nullable=False),
    Index("ix_nonces_created", "created"),
)

# -- migrations ----------------------------------------------------------------------------------
# Each takes a connection inside a transaction. Version 1 creates the tables as they were
# first released; later ones alter them. Never edit a released migration: add one.


def _v1(conn: Connection) -> None:
    v1 = MetaData()
    for table in (meta, counter, records, anchors, scope_log, org_closure, enroll_codes,
                  nonces):  # as released: later migrations change none of these
        table.to_metadata(v1)
    Table(
        "devices", v1,
        *[c._copy() for c in devices.columns if c.name not in ("client_version", "has_aliases")],
    )
    Table("ops", v1, *[c._copy() for c in ops.columns
                       if c.name not in ("prev_seq", "digest")])  # no index
    v1.create_all(conn)
    conn.execute(insert(counter).values(id=1, seq=0))
    conn.execute(insert(meta).values(key="epoch", value=os.urandom(8).hex()))


def _v2(conn: Connection) -> None:
    """Devices report their client version; the audit trail is searchable by record."""
    conn.execute(text("ALTER TABLE devices ADD COLUMN client_version VARCHAR(40)"))
    conn.execute(text("CREATE INDEX ix_ops_rec ON ops (rec_id)"))


def _v3(conn: Connection) -> None:
    """A request sent again after its answer was lost need not echo what the device wrote."""
    conn.execute(text("ALTER TABLE ops ADD COLUMN prev_seq BIGINT"))


def _v4(conn: Connection) -> None:
    """ID numbers unique per county; aliases; op digests; mobility no longer stored."""
    import json

    conn.execute(text("ALTER TABLE ops ADD COLUMN digest VARCHAR(64)"))
    conn.execute(text("ALTER TABLE devices ADD COLUMN has_aliases BOOLEAN NOT NULL "
                      "DEFAULT FALSE"))
    v4 = MetaData()
    id_numbers.to_metadata(v4)
    aliases.to_metadata(v4)
    v4.create_all(conn)
    members = conn.execute(select(records.c.rec_id, records.c.data, records.c.county_id,
                                  records.c.deleted).where(records.c.type == "member")
                           .order_by(records.c.seq)).all()
    held: set[tuple[str, str]] = set()
    for row in members:
        fields = json.loads(row.data)
        if "mobility" in fields:
            del fields["mobility"]
            conn.execute(update(records).where(records.c.rec_id == row.rec_id).values(
                data=json.dumps(fields, ensure_ascii=False, separators=(",", ":"),
                                sort_keys=True)))
        key = (row.county_id or "", fields.get("id_number") or "")
        if key[1] and not row.deleted and key not in held:
            held.add(key)
            conn.execute(insert(id_numbers).values(county_id=key[0], id_number=key[1],
                                                   rec_id=row.rec_id))


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0


def migrate(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target``; returns the version it was at."""
    with write(engine, serialize=False) as conn:
        if engine.dialect.name == "postgresql":  # two processes starting at once
            conn.execute(text("SELECT pg_advisory_xact_lock(20261128)"))
        found = schema_version(conn)
        for version in range(found + 1, target + 1):
            MIGRATIONS[version - 1](conn)
            if version == 1:
                conn.execute(insert(meta).values(key="schema_version", value="1"))
            else:
                conn.execute(update(meta).where(meta.c.key == "schema_version")
                             .values(value=str(version)))
    return found


# -- engines -------------------------------------------------------------------------------------

def default_db_url() -> str:
    from platformdirs import user_data_dir

    directory = Path(user_data_dir("liudong-server", appauthor=False))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _narrow(str(directory), 0o700)  # made by an older version with the umask's permissions
    return f"sqlite:///{directory / 'county.db'}"


def normalize_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:  # a plain path means SQLite
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def make_engine(url: str | None = None) -> Engine:
    url = normalize_url(url or default_db_url())
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        if path is not None:
            _create_owner_only(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60},
                               pool_size=8, max_overflow=8)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.close()
            if path is not None:  # the -wal and -shm now exist: owner-only, whoever made them
                _narrow_sqlite_files(path)

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            immediate = conn.get_execution_options().get("liudong_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
    else:
        # a connection for each request thread (anyio's 40): none opened per request
        engine = create_engine(url, pool_size=40, max_overflow=10, pool_pre_ping=True)
    return engine


# The database and every file SQLite keeps beside it hold members' data (the WAL holds recent
# pages in the clear): owner-only (DESIGN §3.5). SQLite creates -wal, -shm and -journal with the
# main file's permissions, so the main file is made owner-only before SQLite first opens it;
# files an older version left readable by others are narrowed.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", "-writelock")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _sqlite_file(url: str) -> str | None:
    """The database file of an SQLite URL; None for an in-memory or URI-named database."""
    from sqlalchemy.engine import make_url

    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def _create_owner_only(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        try:
            if os.name == "posix":
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    _narrow_sqlite_files(path)


def _narrow_sqlite_files(path: str) -> None:
    for name in (path, *(path + suffix for suffix in SQLITE_SIDE_FILES)):
        _narrow(name, 0o600)


def _narrow(name: str, mode: int) -> None:
    """Take away every permission of group and others from a file or directory of ours."""
    if os.name != "posix":
        return
    try:
        st = os.stat(name)
    except (FileNotFoundError, NotADirectoryError):
        return
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(name, stat.S_IMODE(st.st_mode) & mode)


@contextlib.contextmanager
def write(engine: Engine, serialize: bool = True) -> Iterator[Connection]:
    """A write transaction, serialized against every other writer (see the module text).

    SQLite writers also queue on locks of our own, a thread lock and a file lock beside the
    database (for ``liudong admin`` and any other process on it): waiting in SQLite's busy handler
    polls with sleeps, which left the database idle while requests starved (p99 of seconds
    under load). A process that does not take the file lock still meets the busy timeout."""
    lock = _sqlite_lock(engine) if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with lock, engine.connect().execution_options(liudong_write=True) as conn, conn.begin():
        if serialize and engine.dialect.name != "sqlite":
            conn.execute(select(counter.c.seq).where(counter.c.id == 1).with_for_update())
        yield conn


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    with _LOCKS_LOCK:
        state = engine.__dict__.get("_liudong_write_lock")
        if state is None:
            path = engine.url.database
            fd = None
            if fcntl is not None and path and path != ":memory:" and not path.startswith("file:"):
                fd = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
                weakref.finalize(engine, os.close, fd)
            state = engine.__dict__["_liudong_write_lock"] = (threading.Lock(), fd)
    lock, fd = state
    with lock:
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks in the kernel: woken the moment it is free
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


_LOCKS_LOCK = threading.Lock()


@contextlib.contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one consistent state."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def get_meta(conn: Connection, key: str) -> str | None:
    row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
    return str(row[0]) if row else None


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(insert(meta).values(key=key, value=value))
    else:
        conn.execute(update(meta).where(meta.c.key == key).values(value=value))


def now() -> float:
    return time.time()
