"""The county's copy of the data (DESIGN §3.5): the database, its WAL and every file beside it
are owner-only; backups are encrypted to a passphrase or to a recipient's public key, hold no
plaintext, and a restore decrypts and verifies every chunk before it writes anything — a wrong
key, a flipped byte or a cut file is refused in one line and the database stays empty."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from store import TEST_KDF
from sync.server import backup_crypto, backup_keys, db
from sync.server.admin import backup, restore
from sync.server.backup_crypto import BadCountyBackup, WrongBackupKey
from sync.server.backup_keys import BackupTargetError
from sync.server.county import admin_put
from tests.e2e.conftest import command
from tests.store.test_plaintext import IDS, NAMES, NOTE, PHONES, scan
from tests.sync.harness import County, database

ROOT = Path(__file__).resolve().parents[2]
SQLITE_ONLY = pytest.mark.parametrize("county", ["sqlite"], indirect=True)
PASS = "县里的备份口令 correct horse"
MARKERS = [*NAMES, *PHONES, *IDS, NOTE, IDS[0][-6:]]


def fill(engine: Any) -> list[str]:
    """An organization and the three members of tests/store/test_plaintext.py."""
    org = admin_put(engine, "org", {"name": "城关村党支部", "kind": "branch"})
    return [admin_put(engine, "member", {"name": name, "phone": phone, "id_number": number,
                                         "home_org_id": org, "notes": NOTE})
            for name, phone, number in zip(NAMES, PHONES, IDS)]


def dump(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the epoch aside: a restore changes it on purpose)."""
    with db.read(engine) as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(select(t))
                                if not (t is db.meta and r.key == "epoch")), key=repr)
                for t in db.metadata.sorted_tables}


def tables(url: str) -> list[str]:
    engine = db.make_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def kind_of(county: County) -> str:
    return "postgresql" if county.engine.dialect.name == "postgresql" else "sqlite"


@pytest.fixture
def filled(county: County) -> County:
    fill(county.engine)
    return county


# -- owner-only files ----------------------------------------------------------------------------

@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may enter (tmp_path's parents are root's alone, which would hide the
    files from another user whatever their permissions)."""
    path = Path(tempfile.mkdtemp(prefix="liudong-county-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def loose(directory: Path) -> list[str]:
    return [f"{p.name} {stat.filemode(p.stat().st_mode)}" for p in sorted(directory.iterdir())
            if p.stat().st_mode & 0o077]


def readable_by_nobody(path: Path) -> bool:
    return subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)],
                          capture_output=True, timeout=30).returncode == 0


def can_switch_user() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "not root: cannot read the files as another user (CI runs as root)"
    if shutil.which("runuser") is None:
        return "runuser is not installed"
    return None


def test_the_database_its_wal_and_backups_are_owner_only(open_dir: Path) -> None:
    """As `serve` and `admin` run them, under the common umask 022: the database, -wal, -shm,
    -writelock and a backup are 0600; a local `nobody` reads none of them."""
    path = open_dir / "county.db"
    with umask(0o022):
        engine = db.make_engine(str(path))
        try:
            db.migrate(engine)
            fill(engine)
            with engine.connect() as conn:  # the server holds connections: WAL and SHM exist
                conn.exec_driver_sql("SELECT count(*) FROM records").all()
                names = {p.name for p in open_dir.iterdir()}
                assert {"county.db", "county.db-wal", "county.db-shm",
                        "county.db-writelock"} <= names, names
                backup(engine, open_dir / "county.bak", passphrase=PASS, kdf=TEST_KDF)
                assert loose(open_dir) == []
                assert stat.S_IMODE((open_dir / "county.bak").stat().st_mode) == 0o600
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
                why_not = can_switch_user()
                if why_not is None:
                    control = open_dir / "control"  # the check can fail: a 0644 file is read
                    control.write_text("x")
                    control.chmod(0o644)
                    assert readable_by_nobody(control)
                    control.unlink()
                    for f in sorted(open_dir.iterdir()):
                        assert not readable_by_nobody(f), f
        finally:
            engine.dispose()
    if why_not is not None:
        pytest.skip(why_not + " (the permission bits were checked)")


def test_admin_commands_make_owner_only_files(open_dir: Path, tmp_path: Path) -> None:
    """The command line, a new process with umask 022: `admin org add` creates the database,
    `admin backup` the backup, `admin backup-key` a private key only its owner reads."""
    db_path = open_dir / "county.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    env.update(LIUDONG_LANG="en", LIUDONG_BACKUP_PASSPHRASE=PASS)

    def run(*args: str) -> None:
        done = subprocess.run([*command(), "admin", "--db", str(db_path),
                               *args], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=120, umask=0o022, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (args, done.stdout, done.stderr)

    run("org", "add", "--name", "城关村党支部", "--kind", "branch")
    run("backup-key", "--out", str(open_dir / "county-backup"))
    run("backup", "--out", str(open_dir / "by-key.bak"), "--recipient",
        str(open_dir / "county-backup.pub"))
    run("backup", "--out", str(open_dir / "by-passphrase.bak"))
    made = {p.name for p in open_dir.iterdir()}
    assert {"county.db", "county.db-writelock", "by-key.bak", "by-passphrase.bak",
            "county-backup.key", "county-backup.pub"} <= made, made
    assert loose(open_dir) == ["county-backup.pub -rw-r--r--"]  # the public key only


def test_files_an_older_version_left_readable_are_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "county.db"
    engine = db.make_engine(str(path))
    db.migrate(engine)
    engine.dispose()
    for name in ("county.db", "county.db-wal", "county.db-writelock"):
        (tmp_path / name).touch()
        (tmp_path / name).chmod(0o644)
    engine = db.make_engine(str(path))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").all()
        assert loose(tmp_path) == []
    finally:
        engine.dispose()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_DATA_HOME is Linux's")
def test_the_default_database_directory_is_owner_only(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with umask(0o022):
        url = db.default_db_url()
    directory = tmp_path / "data" / "liudong-server"
    assert url.endswith(str(directory / "county.db"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    directory.chmod(0o755)  # as an older version made it
    db.default_db_url()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


# -- encrypted backups ---------------------------------------------------------------------------

def test_a_backup_holds_no_plaintext(filled: County, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    private, public = backup_keys.new_key_pair()
    backup(filled.engine, out / "by-passphrase.bak", passphrase=PASS, kdf=TEST_KDF)
    backup(filled.engine, out / "by-key.bak", recipient=public)
    assert scan(out, [*MARKERS, PASS]) == []
    # the markers are in there, sealed: decrypted, the backup holds every one of them
    with backup_crypto.open_backup(out / "by-key.bak") as sealed:
        plain = b"\n".join(sealed.lines(sealed.unlock(identity=private)))
    assert all(m.encode() in plain for m in MARKERS)


@pytest.mark.parametrize("how", ["passphrase", "recipient"])
def test_round_trip(filled: County, tmp_path: Path, how: str) -> None:
    saved = tmp_path / "county.bak"
    private, public = backup_keys.new_key_pair()
    if how == "passphrase":
        counts = backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    else:
        counts = backup(filled.engine, saved, recipient=public)
    assert counts["records"] == 4 and counts["ops"] == 4
    with database(kind_of(filled), tmp_path) as url:
        engine = db.make_engine(url)
        try:
            if how == "passphrase":
                restored = restore(engine, saved, passphrase=PASS)
            else:
                restored = restore(engine, saved, private_key=private)
            assert restored == {k: v for k, v in counts.items() if v}
            assert dump(engine) == dump(filled.engine)
            with db.read(engine) as conn, db.read(filled.engine) as before:
                assert db.get_meta(conn, "epoch") != db.get_meta(before, "epoch")
        finally:
            engine.dispose()


def test_a_backup_spans_many_chunks(filled: County, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_crypto, "CHUNK_SIZE", 64)
    saved = tmp_path / "county.bak"
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    with backup_crypto.open_backup(saved) as sealed:
        assert sum(1 for _ in sealed.chunks(sealed.unlock(PASS))) > 10
    with database("sqlite", tmp_path) as url:
        engine = db.make_engine(url)
        restore(engine, saved, passphrase=PASS)
        assert dump(engine) == dump(filled.engine)
        engine.dispose()


def refused(url: str, saved: Path, error: type[Exception], **key: Any) -> Exception:
    """The restore fails with ``error`` and leaves the target database without a table."""
    engine = db.make_engine(url)
    try:
        with pytest.raises(error) as caught:
            restore(engine, saved, **key)
    finally:
        engine.dispose()
    assert tables(url) == [], "a refused restore wrote into the database"
    return caught.value


def test_wrong_passphrase_or_key_is_refused_and_nothing_is_written(filled: County,
                                                                   tmp_path: Path) -> None:
    private, public = backup_keys.new_key_pair()
    other, _ = backup_keys.new_key_pair()
    by_pass, by_key = tmp_path / "p.bak", tmp_path / "k.bak"
    backup(filled.engine, by_pass, passphrase=PASS, kdf=TEST_KDF)
    backup(filled.engine, by_key, recipient=public)
    with database(kind_of(filled), tmp_path) as url:
        err = refused(url, by_pass, WrongBackupKey, passphrase=PASS + "!")
        assert err.exit_code == 3 and "wrong backup passphrase" in err.en
        err = refused(url, by_key, WrongBackupKey, private_key=other)
        assert err.exit_code == 3 and "made to key" in err.en
        refused(url, by_key, backup_keys.BackupKeyError, passphrase=PASS)
        refused(url, by_pass, backup_keys.BackupKeyError, private_key=private)
        # and the right key still opens both
        engine = db.make_engine(url)
        restore(engine, by_key, private_key=private)
        engine.dispose()


@SQLITE_ONLY
def test_every_flipped_byte_and_every_truncation_is_refused(filled: County,
                                                            tmp_path: Path) -> None:
    saved = tmp_path / "county.bak"
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    data = saved.read_bytes()
    bad = tmp_path / "bad.bak"
    with database("sqlite", tmp_path) as url:
        engine = db.make_engine(url)
        try:
            for i in range(len(data)):  # the checksum catches them before any key is derived
                bad.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
                with pytest.raises(BadCountyBackup):
                    restore(engine, bad, passphrase=PASS)
            for n in range(len(data)):
                bad.write_bytes(data[:n])
                with pytest.raises(BadCountyBackup):
                    restore(engine, bad, passphrase=PASS)
        finally:
            engine.dispose()
        assert tables(url) == []


def resum(data: bytes) -> bytes:
    """What an attacker who knows the format does: the checksum made to fit again."""
    body = data[:-32]
    return body + hashlib.sha256(body).digest()


@SQLITE_ONLY
def test_edits_that_fix_the_checksum_are_refused(filled: County, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Altered, reordered, dropped or cut chunks, and an altered header, with the checksum
    recomputed: the header MAC and each chunk's AEAD (bound to its place and to being last)
    refuse them all."""
    monkeypatch.setattr(backup_crypto, "CHUNK_SIZE", 100)
    saved = tmp_path / "county.bak"
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    data = saved.read_bytes()
    header_len = int.from_bytes(data[10:14], "big")
    start = 14 + header_len + 32
    chunks, offset = [], start
    while offset < len(data) - 32:
        length = int.from_bytes(data[offset:offset + 4], "big")
        chunks.append(data[offset:offset + 4 + 12 + length])
        offset += 4 + 12 + length
    assert len(chunks) >= 3 and offset == len(data) - 32
    head = data[:start]
    edits = {
        "swapped": head + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "dropped": head + b"".join(chunks[1:]),
        "cut": head + b"".join(chunks[:-1]),
        "repeated": head + chunks[0] + b"".join(chunks),
    }
    for i in range(start, len(data) - 32, max(1, (len(data) - 32 - start) // 40)):
        edits[f"flip {i}"] = data[:i] + bytes([data[i] ^ 0x80]) + data[i + 1:-32]
    for i in [*range(14, start, max(1, header_len // 10)), start - 1]:
        edits[f"header {i}"] = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:-32]
    bad = tmp_path / "bad.bak"
    with database("sqlite", tmp_path) as url:
        engine = db.make_engine(url)
        try:
            for name, edited in edits.items():
                bad.write_bytes(resum(edited + bytes(32)))
                with pytest.raises((BadCountyBackup, WrongBackupKey)) as caught:
                    restore(engine, bad, passphrase=PASS)
                if name.startswith("header"):
                    continue  # a wrong key and an altered header are one and the same
                assert isinstance(caught.value, BadCountyBackup), name
        finally:
            engine.dispose()
        assert tables(url) == []


def test_a_refused_restore_leaves_postgresql_empty_too(county: County, tmp_path: Path) -> None:
    fill(county.engine)
    saved = tmp_path / "county.bak"
    backup(county.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    data = saved.read_bytes()
    with database(kind_of(county), tmp_path) as url:
        (tmp_path / "flipped.bak").write_bytes(resum(data[:-100] + bytes([data[-100] ^ 1])
                                                     + data[-99:]))
        refused(url, tmp_path / "flipped.bak", BadCountyBackup, passphrase=PASS)
        (tmp_path / "cut.bak").write_bytes(data[:len(data) // 2])
        refused(url, tmp_path / "cut.bak", BadCountyBackup, passphrase=PASS)


def test_not_a_backup_and_old_unencrypted_backups_are_refused(tmp_path: Path) -> None:
    import gzip

    old = tmp_path / "county.jsonl.gz"
    with gzip.open(old, "wt") as fh:
        fh.write(json.dumps({"format": "liudong-county-backup", "schema_version": 4}) + "\n")
    url = f"sqlite:///{tmp_path / 'target.db'}"
    err = refused(url, old, BadCountyBackup, passphrase=PASS)
    assert "unencrypted backup of an older version" in err.en
    (tmp_path / "empty").touch()
    assert "is empty" in refused(url, tmp_path / "empty", BadCountyBackup, passphrase=PASS).en
    assert "does not exist" in refused(url, tmp_path / "none", BadCountyBackup,
                                       passphrase=PASS).en
    assert "directory" in refused(url, tmp_path, BadCountyBackup, passphrase=PASS).en


def test_a_restore_into_a_database_with_data_is_refused(filled: County, tmp_path: Path) -> None:
    saved = tmp_path / "county.bak"
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    before = dump(filled.engine)
    with pytest.raises(Exception, match="not empty"):
        restore(filled.engine, saved, passphrase=PASS)
    assert dump(filled.engine) == before


@SQLITE_ONLY
def test_the_backup_file_is_written_safely(filled: County, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Exclusive, no-follow temporary file; never over a file that is not a county backup, nor
    through a symlink; a failed backup leaves nothing behind; an older backup is replaced."""
    tmp_path = tmp_path / "out"  # the SQLite county's files are in tmp_path itself
    tmp_path.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("important")
    link = tmp_path / "link.bak"
    link.symlink_to(victim)
    for target in (link, victim):
        with pytest.raises(BackupTargetError):
            backup(filled.engine, target, passphrase=PASS, kdf=TEST_KDF)
    assert victim.read_text() == "important"
    with pytest.raises(BackupTargetError):
        backup(filled.engine, tmp_path, passphrase=PASS, kdf=TEST_KDF)
    with pytest.raises(BackupTargetError):
        backup(filled.engine, tmp_path / "no" / "such.bak", passphrase=PASS, kdf=TEST_KDF)
    with pytest.raises(backup_keys.BackupKeyError):
        backup(filled.engine, tmp_path / "weak.bak", passphrase="short", kdf=TEST_KDF)

    import sync.server.admin as admin

    def failing(row: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("the disk went away")

    saved = tmp_path / "county.bak"
    with monkeypatch.context() as m:
        m.setattr(admin, "_jsonable", failing)
        with pytest.raises(RuntimeError):
            backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.bak", "victim"]
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    first = saved.read_bytes()
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)  # an older backup: replaced
    assert saved.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["county.bak", "link.bak", "victim"]
    # every file the writer creates is opened exclusively and without following a link
    opened: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".tmp"):
            opened.append(flags)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(backup_crypto.os, "open", spy)
    backup(filled.engine, saved, passphrase=PASS, kdf=TEST_KDF)
    assert opened and all(f & os.O_CREAT and f & os.O_EXCL and f & os.O_NOFOLLOW
                          for f in opened)


def test_key_files(tmp_path: Path) -> None:
    made = backup_keys.write_key_pair(tmp_path / "county")
    private_path, public_path = Path(made["private"]), Path(made["public"])
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    public = backup_keys.load_public_key(public_path)
    private = backup_keys.load_private_key(private_path)
    assert backup_keys.fingerprint(public) == made["fingerprint"]
    with pytest.raises(BackupTargetError):  # a key is never replaced: old backups need it
        backup_keys.write_key_pair(tmp_path / "county")
    assert backup_keys.load_private_key(private_path) == private
    with pytest.raises(backup_keys.BackupKeyError, match="private key"):
        backup_keys.load_public_key(private_path)
    with pytest.raises(backup_keys.BackupKeyError, match="public key"):
        backup_keys.load_private_key(public_path)
    (tmp_path / "junk").write_text("LDKEY1-short\n")
    with pytest.raises(backup_keys.BackupKeyError, match="not a Liudong"):
        backup_keys.load_private_key(tmp_path / "junk")
    assert "LDKEY1" not in public_path.read_text()


def test_backup_while_the_county_writes_is_consistent(county: County, tmp_path: Path) -> None:
    """A backup taken while writes go on is one snapshot: each record has its op in the audit
    trail, and the counter is the last record's sequence number."""
    org = admin_put(county.engine, "org", {"name": "城关村党支部", "kind": "branch"})
    stop, going = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    written: list[int] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                admin_put(county.engine, "member", {"name": f"党员{len(written)}",
                                                    "home_org_id": org})
                written.append(1)
                if len(written) >= 5:
                    going.set()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            going.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert going.wait(60)
        saved = []
        for n in range(3):
            saved.append(tmp_path / f"county-{n}.bak")
            backup(county.engine, saved[-1], passphrase=PASS, kdf=TEST_KDF)
    finally:
        stop.set()
        thread.join()
    assert not errors
    for path in saved:
        with database(kind_of(county), tmp_path) as url:
            engine = db.make_engine(url)
            try:
                restore(engine, path, passphrase=PASS)
                with db.read(engine) as conn:
                    n_records = conn.execute(select(func.count()).select_from(db.records)).scalar()
                    n_ops = conn.execute(select(func.count()).select_from(db.ops)).scalar()
                    top = conn.execute(select(func.max(db.records.c.seq))).scalar()
                    seq = conn.execute(select(db.counter.c.seq)).scalar()
                assert n_records == n_ops and seq == top and n_records > 1
            finally:
                engine.dispose()


def test_the_command_line(tmp_path: Path) -> None:
    """`admin backup`, `backup-key`, `restore` as people run them: one-line errors with their
    exit codes, never a traceback, and a refused restore leaves the database empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    env["LIUDONG_LANG"] = "en"

    def run(*args: str, passphrase: str | None = None, stdin: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        extra = {"LIUDONG_BACKUP_PASSPHRASE": passphrase} if passphrase else {}
        return subprocess.run([*command(), "admin", *args],
                              capture_output=True, text=True, env={**env, **extra}, cwd=ROOT,
                              timeout=120, input=stdin if stdin is not None else "")

    source = f"sqlite:///{tmp_path / 'county.db'}"
    assert run("--db", source, "org", "add", "--name", "光山县委", "--kind", "county",
               "--division-code", "411522").returncode == 0
    assert run("--db", source, "backup", "--out", str(tmp_path / "p.bak"),
               passphrase=PASS).returncode == 0
    assert run("--db", source, "backup", "--out", str(tmp_path / "s.bak"),
               stdin=PASS + "\n").returncode == 0  # the passphrase on stdin
    assert run("backup-key", "--out", str(tmp_path / "k")).returncode == 0
    assert run("--db", source, "backup", "--out", str(tmp_path / "k.bak"), "--recipient",
               str(tmp_path / "k.pub")).returncode == 0
    data = (tmp_path / "p.bak").read_bytes()
    (tmp_path / "flipped.bak").write_bytes(data[:200] + bytes([data[200] ^ 1]) + data[201:])

    failures = [
        (("restore", str(tmp_path / "p.bak")), PASS + "?", 3, "wrong backup passphrase"),
        (("restore", str(tmp_path / "flipped.bak")), PASS, 4, "checksum"),
        (("restore", str(tmp_path / "p.bak")), None, 2, "backup passphrase is needed"),
        (("restore", str(tmp_path / "k.bak")), None, 2, "--identity"),
        (("restore", str(tmp_path / "k.bak"), "--identity", str(tmp_path / "k.pub")), None, 2,
         "is the public key"),
        (("backup", "--out", str(tmp_path / "x.bak"), "--recipient", str(tmp_path / "k.key")),
         None, 2, "is the private key"),
        (("backup", "--out", str(tmp_path / "x.bak")), "short", 2, "at least 8"),
    ]
    for n, (args, passphrase, code, words) in enumerate(failures):
        target = f"sqlite:///{tmp_path / f'target-{n}.db'}"
        done = run("--db", target, *args, passphrase=passphrase)
        assert done.returncode == code, (args, done.stderr)
        assert words in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        if args[0] == "restore":
            assert tables(target) == []
    for n, (args, passphrase) in enumerate([
            (("restore", str(tmp_path / "p.bak")), PASS),
            (("restore", str(tmp_path / "s.bak")), PASS),
            (("restore", str(tmp_path / "k.bak"), "--identity", str(tmp_path / "k.key")), None)]):
        target = f"sqlite:///{tmp_path / f'restored-{n}.db'}"
        done = run("--db", target, *args, passphrase=passphrase)
        assert done.returncode == 0 and "Restored" in done.stdout, done.stderr
        assert "光山县委" in run("--db", target, "org", "list").stdout
