"""Benchmarks of sync against a real county server on loopback (DESIGN §7).

    python bench/bench_sync.py            # 2,000-member scope, 1,000 edits on a slow link,
                                          # 50 and 200 devices on SQLite and PostgreSQL
    python bench/bench_sync.py --quick    # smaller sizes (under two minutes)
    python bench/bench_sync.py --parts wire,slow --engines sqlite --profile   # see --help

Everything goes over real sockets to a real ``liudong serve`` process (uvicorn), started here
with ``python -m tui.cli serve``; orgs and enrollment codes are made with ``sync.server.admin``
on the same database URL, devices are real encrypted stores driven by ``sync.client.Device``.

1. **Bytes on the wire and round trips.** A TCP proxy written here sits between the device's
   httpx client and the server and counts every byte each way (HTTP headers included; TCP/IP
   headers not) and every HTTP request (it frames requests by ``Content-Length``). Measured: an
   incremental sync of 1 edit, of 100 edits, a sync with nothing to do, and the initial sync of
   a device enrolled at a branch of 2,000 members. The anchor is PouchDB 9 (CouchDB protocol),
   whose figures in DESIGN §7 are *fixed published measurements*, not re-measured here.
2. **Slow link.** The same proxy shapes the link: 64 kbit/s each way (one link shared by all
   connections), 300 ms each way (600 ms RTT, a new connection pays one RTT for its handshake),
   and it cuts a connection a few times at a random byte inside a message body: by turns a
   request (the server never gets it whole) and an answer (the server applied the request, the
   device never hears so); the first attempt of a round is cut, its retry spared. 1,000 edits,
   each its own commit, are synced; the server's ``ops`` table and records are then checked:
   every op arrived exactly once, none became a conflict, the records hold the final values.
   The bound is 1.3 × (bytes both ways / 8,000 B/s) + (requests + connections) × 600 ms, from
   what the proxy actually saw. The client's retry backoff sleeps for real (and is shown).
3. **Server throughput.** 50 and 200 enrolled devices (threads of this process, each its own
   store and HTTP connection, two devices per branch) each edit a member and sync, in a loop,
   against SQLite and against PostgreSQL: the rate is the most the server does. In that closed
   loop a device's wait is just devices / rate (200 devices at 150/s wait 1.3 s whatever the
   server does), so the p99 target is measured in a second run with the same devices on a
   timetable that offers 100 syncs/s in all (open loop; latency from the planned moment, so a
   late start counts, as in wrk2). Anchor, same run, same threads: as many ``GET
   /v1/health`` requests (one small DB read each, through the same uvicorn/FastAPI stack): the
   ceiling of this load generator and HTTP stack on this machine, so the ratio is what the sync
   work itself costs. The machine has 2 cores: the load generator (device-side signing,
   encryption, fsync) and PostgreSQL compete with the server for them, so the CPU each used is
   printed, and the server's CPU time per request, which depends least on the rest; other
   processes busy before a run are reported (the figures are then low).

PostgreSQL: ``LIUDONG_TEST_PG_URL`` when set, else one started here (initdb + pg_ctl from
/usr/lib/postgresql/*/bin, as the ``postgres`` user when root, fsync on, on a free port).
KB here is 1,000 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from store import TEST_KDF, Store
from store.validate import id_check_char
from sync.client import Device
from sync.errors import SyncError
from sync.server import db
from sync.server.admin import add_org, make_enroll_code

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "correct horse battery"
SEED = 20240612
TODAY = dt.date.today()
KB = 1000

# PouchDB 9 client and server, CouchDB replication protocol, same record shape: published
# figures quoted in DESIGN §7 (requests, bytes). Fixed: they are not measured in this run.
POUCHDB = {"1 edit": (14, 10.1 * KB), "100 edits": (14, 59.9 * KB),
           "nothing to do": (8, 5.7 * KB), "initial": (104, 336 * KB)}

SLOW_BANDWIDTH = 64_000 / 8  # bytes per second, each way
SLOW_DELAY = 0.300  # seconds each way


@dataclass(frozen=True)
class Sizes:
    members: int  # in the scope of the initial sync
    slow_edits: int  # synced over the slow link
    drops: int  # connections cut on the slow link
    devices: tuple[int, ...]  # concurrent devices for throughput
    duration: float  # seconds of load per run
    preload: int  # members on the throughput server before the load


FULL = Sizes(members=2_000, slow_edits=1_000, drops=4, devices=(50, 200), duration=15.0,
             preload=2_000)
QUICK = Sizes(members=2_000, slow_edits=500, drops=2, devices=(20, 50), duration=4.0,
              preload=300)


# -- plausible people --------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国文红玉兰春梅海波辉鹏飞斌宇浩凯健俊"
    "帆旭宁龙林欣晨雪琳晶婷倩颖佳慧萍玲丹燕云峰鑫亮成志新东晓小立永长重乐朝子嘉思雨博轩然宏"
)
REGIONS = ("411522", "411522", "411522", "411502", "411503", "411521", "411524", "320106",
           "330102", "440106")
EDUCATION = (("junior", 20), ("senior", 25), ("college", 20), ("bachelor", 28), ("master", 6),
             ("doctor", 1))
PLACES = ("郑州", "信阳", "上海", "苏州", "深圳", "广州", "杭州", "武汉")


def random_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def random_member(rng: random.Random, home_org_id: str) -> dict[str, Any]:
    born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(55 * 365))
    gender = rng.choice(("male", "female"))
    seq = rng.randrange(100) * 10 + rng.choice((1, 3, 5, 7, 9) if gender == "male" else
                                               (0, 2, 4, 6, 8))
    first17 = f"{rng.choice(REGIONS)}{born:%Y%m%d}{seq:03d}"
    try:
        adult = born.replace(year=born.year + 18)
    except ValueError:  # born on 29 February
        adult = dt.date(born.year + 18, 3, 1)
    joined = adult + dt.timedelta(days=rng.randrange(max(1, (TODAY - adult).days)))
    surname = rng.choices(SURNAMES, weights=[1 / (r + 4) for r in range(len(SURNAMES))])[0]
    member: dict[str, Any] = {
        "name": surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))),
        "gender": gender,
        "birth_date": born.isoformat(),
        "ethnicity": "汉族",
        "id_number": first17 + id_check_char(first17),
        "phone": random_phone(rng),
        "education": rng.choices([e for e, _ in EDUCATION], [w for _, w in EDUCATION])[0],
        "standing": "full",
        "joined_on": joined.isoformat(),
        "home_org_id": home_org_id,
    }
    if rng.random() < 0.3:
        member["notes"] = f"在{rng.choice(PLACES)}务工，每月电话联系"
    return member


def random_edit(rng: random.Random, n: int) -> dict[str, Any]:
    """One realistic change to a member: a new phone number or a dated note."""
    if rng.random() < 0.5:
        return {"phone": random_phone(rng)}
    return {"notes": f"第{n}次联系：在{rng.choice(PLACES)}务工，情况良好"}


def fill_branch(store: Store, count: int, host_org_id: str | None,
                rng: random.Random) -> dict[str, int]:
    """``count`` members of the store's branch, a contact for one in four, an outflow (to
    ``host_org_id``) for one in ten; committed 100 records at a time."""
    home = store.meta["own_org_id"]
    made = {"member": 0, "contact": 0, "flow": 0}
    for start in range(0, count, 100):
        with store.batch() as b:
            for _ in range(min(100, count - start)):
                member_id = b.put("member", random_member(rng, home))
                made["member"] += 1
                if rng.random() < 0.25:
                    on = TODAY - dt.timedelta(days=rng.randrange(1, 300))
                    b.put("contact", {"member_id": member_id, "on": on.isoformat(),
                                      "channel": rng.choice(("phone", "wechat", "visit")),
                                      "reached": rng.random() < 0.9,
                                      "summary": f"在{rng.choice(PLACES)}务工，身体健康"})
                    made["contact"] += 1
                if host_org_id and rng.random() < 0.1:
                    left = TODAY - dt.timedelta(days=rng.randrange(30, 700))
                    b.put("flow", {"member_id": member_id, "home_org_id": home,
                                   "host_org_id": host_org_id, "reason": "work",
                                   "left_on": left.isoformat(), "status": "pending_report",
                                   "destination_employer": f"{rng.choice(PLACES)}某公司"})
                    made["flow"] += 1
    return made


# -- the proxy ---------------------------------------------------------------------------------

class Link:
    """One direction of a simulated link: a serial line of ``bandwidth`` bytes/s (None: no
    limit) shared by every connection, then ``delay`` seconds of propagation."""

    def __init__(self, bandwidth: float | None, delay: float) -> None:
        self.bandwidth, self.delay = bandwidth, delay
        self.free_at = 0.0

    def arrival(self, size: int, now: float) -> float:
        if self.bandwidth is None:
            return now + self.delay
        self.free_at = max(now, self.free_at) + size / self.bandwidth
        return self.free_at + self.delay


@dataclass
class Shape:
    """How the proxy treats traffic: the two links, and connections to cut.

    A cut falls at a random byte inside a message body: of a request (the server never gets it
    whole) or of an answer (the server applied the request, the device never learns it), by
    turns, starting with a request. The first attempt of a round is cut, its retry is spared,
    the next round's first attempt is cut again, until ``drops`` cuts were made: drops now and
    then, not a dead link."""

    up: Link
    down: Link
    drops: int = 0  # cuts still to make
    rng: random.Random = field(default_factory=random.Random)
    turn: str = "up"
    spare_next: bool = False
    answer_cut: bool = False  # cut the answer to the request in flight
    cut_log: list[str] = field(default_factory=list)

    def on_request(self, body: int) -> int | None:
        """A request head went by: where in its body to cut, or None."""
        self.answer_cut = False
        if not self.drops or self.spare_next:
            self.spare_next = False
            return None
        self.drops -= 1
        self.spare_next = True
        direction, self.turn = self.turn, ("down" if self.turn == "up" else "up")
        if direction == "down":
            self.answer_cut = True
            return None
        return self.rng.randrange(body) if body else 0

    def on_answer(self, body: int) -> int | None:
        if not self.answer_cut:
            return None
        self.answer_cut = False
        return self.rng.randrange(body) if body else 0


class Framer:
    """Follows HTTP/1.1 messages through one direction of a connection (bodies framed by
    Content-Length: httpx sends it for a body given as bytes, and so does the server)."""

    def __init__(self, plan: Callable[[int], int | None] | None = None) -> None:
        self.plan = plan  # called at each head with the body's length: where to cut, or None
        self.head = b""
        self.body_left = 0
        self.cut_in: int | None = None
        self.lines: list[str] = []  # the first line of each head
        self.planned = (0, 0)  # the last cut planned: (offset into the body, body length)

    def feed(self, data: bytes) -> int | None:
        """Take ``data``; the offset in it at which to cut the connection, or None."""
        i = 0
        while i < len(data):
            if self.body_left:
                take = min(self.body_left, len(data) - i)
                if self.cut_in is not None:
                    if self.cut_in < take:
                        return i + self.cut_in
                    self.cut_in -= take
                self.body_left -= take
                i += take
                continue
            before = len(self.head)
            self.head += data[i:]
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return None
            i += end + 4 - before
            head = self.head[:end].decode("latin-1")
            self.head = b""
            self.lines.append(head.split("\r\n", 1)[0])
            length = re.search(r"(?im)^content-length:\s*(\d+)", head)
            self.body_left = int(length.group(1)) if length else 0
            self.cut_in = self.plan(self.body_left) if self.plan else None
            if self.cut_in is not None:
                self.planned = (self.cut_in, self.body_left)
            if self.cut_in is not None and not self.body_left:
                return i
        return None


@dataclass
class Traffic:
    up: int = 0  # bytes client → server
    down: int = 0  # bytes server → client
    requests: int = 0
    connections: int = 0
    cuts: int = 0

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(self.up - other.up, self.down - other.down,
                       self.requests - other.requests, self.connections - other.connections,
                       self.cuts - other.cuts)

    @property
    def total(self) -> int:
        return self.up + self.down


class Proxy:
    """A TCP proxy on loopback (asyncio, in its own thread) that counts what crosses it and,
    given a ``Shape``, throttles, delays and cuts."""

    CHUNK = 1460  # a TCP segment's worth: cuts and pacing fall inside messages

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.shape: Shape | None = None
        self.traffic = Traffic()
        self.request_lines: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _listen(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def snapshot(self) -> Traffic:
        time.sleep(0.05)  # let the proxy thread finish writing what it has counted
        return Traffic(**vars(self.traffic))

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter,
                      ) -> None:
        shape = self.shape
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            c_writer.transport.abort()
            return
        self.traffic.connections += 1
        writers = (c_writer, s_writer)
        now = self.loop.time()
        # The handshake costs one round trip before the client's first byte can go.
        ready = now + 2 * shape.up.delay if shape else now
        await asyncio.gather(
            self._pump(c_reader, s_writer, "up", shape, ready, writers),
            self._pump(s_reader, c_writer, "down", shape, now, writers))

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, direction: str,
                    shape: Shape | None, ready: float,
                    writers: tuple[asyncio.StreamWriter, ...]) -> None:
        queue: asyncio.Queue[tuple[float, bytes, str]] = asyncio.Queue()
        # Requests are counted as they are delivered; cuts are planned as bytes are read.
        counter = Framer() if direction == "up" else None
        planner = Framer(None if shape is None else
                         shape.on_request if direction == "up" else shape.on_answer)
        deliver = asyncio.create_task(self._deliver(queue, dst, direction, writers, counter))
        at = ready
        while True:
            try:
                data = await src.read(self.CHUNK)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                queue.put_nowait((at, b"", "eof"))
                break
            cut = planner.feed(data)
            if cut is not None:
                data = data[:cut]
            if shape:
                link = shape.up if direction == "up" else shape.down
                at = link.arrival(len(data), max(self.loop.time(), ready))
            else:
                at = self.loop.time()
            queue.put_nowait((at, data, "cut" if cut is not None else ""))
            if cut is not None:
                assert shape is not None
                offset, length = planner.planned
                shape.cut_log.append(f"{'request' if direction == 'up' else 'answer'} cut "
                                     f"{offset:,} B into its {length:,} B body")
                break
        await deliver

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes, str]],
                       dst: asyncio.StreamWriter, direction: str,
                       writers: tuple[asyncio.StreamWriter, ...],
                       framer: Framer | None) -> None:
        while True:
            at, data, action = await queue.get()
            wait = at - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data and not dst.is_closing():
                if direction == "up":
                    self.traffic.up += len(data)
                else:
                    self.traffic.down += len(data)
                if framer is not None:
                    seen = len(framer.lines)
                    framer.feed(data)
                    self.traffic.requests += len(framer.lines) - seen
                    self.request_lines += framer.lines[seen:]
                dst.write(data)
                with contextlib.suppress(ConnectionError, OSError):
                    await dst.drain()
            if action == "cut":
                self.traffic.cuts += 1
                for w in writers:  # both ends see the connection die at once
                    w.transport.abort()
                return
            if action == "eof":
                if not dst.is_closing():
                    dst.close()
                return


# -- servers -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str  # database
    port: int
    proc: subprocess.Popen[bytes]
    engine: Engine

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def county_server(db_url: str, log: Path) -> Iterator[Server]:
    """``liudong serve`` in a subprocess on a free port, with an admin engine on its database."""
    engine = db.make_engine(db_url)
    db.migrate(engine)
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "serve", "--db", db_url, "--port", str(port),
             # plain HTTP, as PouchDB's figures were measured; answers are still signed
             "--insecure-http"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: see {log}")
            time.sleep(0.1)
        yield Server(db_url, port, proc, engine)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        engine.dispose()


@contextlib.contextmanager
def postgres() -> Iterator[tuple[str, int | None] | None]:
    """A PostgreSQL database URL: ``LIUDONG_TEST_PG_URL``'s server, or a server started here
    as the dev script does (but with fsync on: commits are durable, as SQLite's are)."""
    base = os.environ.get("LIUDONG_TEST_PG_URL")
    proc_dir: Path | None = None
    as_pg: list[str] = []
    bindir: Path | None = None
    if not base:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                       key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)])
        if not found:
            yield None
            return
        bindir = found[-1]
        proc_dir = Path(tempfile.mkdtemp(prefix="liudong-bench-pg-"))  # postgres must reach it
        if os.geteuid() == 0:
            shutil.chown(proc_dir, "postgres")
            as_pg = ["runuser", "-u", "postgres", "--"]
        port = free_port()
        for step in ([str(bindir / "initdb"), "-D", str(proc_dir / "data"), "-A", "trust",
                      "-U", "postgres", "--no-sync"],
                     [str(bindir / "pg_ctl"), "-D", str(proc_dir / "data"), "-l",
                      str(proc_dir / "server.log"), "-w", "-t", "60", "-o",
                      f"-p {port} -k {proc_dir} -c listen_addresses=127.0.0.1 "
                      "-c max_connections=300", "start"]):
            done = subprocess.run([*as_pg, *step], capture_output=True, text=True)
            if done.returncode:
                shutil.rmtree(proc_dir, ignore_errors=True)
                raise RuntimeError(f"{Path(step[0]).name} failed: {done.stdout}{done.stderr}")
        base = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    import psycopg

    name = f"liudong_bench_{os.getpid()}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
            settings = {k: conn.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
                        for k in ("server_version", "fsync", "synchronous_commit")}
        print(f"PostgreSQL {settings['server_version']} ({'started here' if proc_dir else base}"
              f"), fsync={settings['fsync']}, synchronous_commit="
              f"{settings['synchronous_commit']}")
        postmaster = None
        if proc_dir is not None:  # its processes' CPU is the database's
            postmaster = int((proc_dir / "data" / "postmaster.pid").read_text().split()[0])
        yield base.rsplit("/", 1)[0] + "/" + name, postmaster
    finally:
        with contextlib.suppress(Exception), psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if proc_dir is not None and bindir is not None:
            subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(proc_dir / "data"), "-m",
                            "fast", "stop"], capture_output=True)
            shutil.rmtree(proc_dir, ignore_errors=True)


# -- devices -----------------------------------------------------------------------------------

class Devices:
    """Enrolled devices with stores under ``root``, their codes made on ``server``'s database
    and pointing at ``url`` (the server itself, or a proxy in front of it)."""

    def __init__(self, server: Server, root: Path) -> None:
        self.server, self.root = server, root
        self.stores: list[Store] = []
        self.lock = threading.Lock()

    def enroll(self, name: str, org_id: str, url: str, **kwargs: Any) -> Device:
        store, _ = Store.create(self.root / name, PASSPHRASE, kdf=TEST_KDF,
                                org={"name": "本支部", "kind": "branch"})
        with self.lock:
            self.stores.append(store)
        code = make_enroll_code(self.server.engine, org_id, url)["code"]
        device = Device(store, **kwargs)
        device.enroll(code, name=name)
        return device

    def close(self) -> None:
        for store in self.stores:
            store.close()


def org_tree(engine: Engine, branches: int) -> tuple[str, list[str]]:
    """A county, a town committee per ten branches, ``branches`` branches. (county, branches)"""
    county = add_org(engine, {"name": "光山县委", "kind": "county", "division_code": "411522"})
    out: list[str] = []
    town = county
    for i in range(branches):
        if i % 10 == 0:
            town = add_org(engine, {"name": f"第{i // 10 + 1}镇党委", "kind": "committee",
                                    "parent_id": county})
        out.append(add_org(engine, {"name": f"第{i + 1}村党支部", "kind": "branch",
                                    "parent_id": town}))
    return county, out


@dataclass
class OpsRows:
    rows: int
    dev_seqs: int  # distinct
    server_seqs: int  # distinct
    outcomes: dict[str, int]


def ops_rows(engine: Engine, device_id: str, low: int, high: int) -> OpsRows:
    """What the server's audit trail holds for one device's dev_seq in [low, high]."""
    o = db.ops
    where = (o.c.device_id == device_id, o.c.dev_seq >= low, o.c.dev_seq <= high)
    with db.read(engine) as conn:
        row = conn.execute(select(func.count(), func.count(o.c.dev_seq.distinct()),
                                  func.count(o.c.seq.distinct())).where(*where)).one()
        outcomes = dict(conn.execute(select(o.c.outcome, func.count()).where(*where)
                                     .group_by(o.c.outcome)).all())
    return OpsRows(int(row[0]), int(row[1]), int(row[2]),
                   {str(k): int(v) for k, v in outcomes.items()})


def server_fields(engine: Engine, rec_ids: list[str]) -> dict[str, dict[str, Any]]:
    import json

    out: dict[str, dict[str, Any]] = {}
    with db.read(engine) as conn:
        for start in range(0, len(rec_ids), 500):
            for r in conn.execute(select(db.records.c.rec_id, db.records.c.data).where(
                    db.records.c.rec_id.in_(rec_ids[start:start + 500]))):
                out[r.rec_id] = json.loads(r.data)
    return out


# -- the report --------------------------------------------------------------------------------

@dataclass
class Row:
    what: str
    ours: str
    anchor: str = ""
    ratio: str = ""
    target: str = "(info)"
    ok: bool | None = None


def kb(n: float) -> str:
    return f"{n / KB:.2f} KB"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def pct(xs: list[float], p: int) -> float:
    if len(xs) < 2:
        return xs[0] if xs else float("nan")
    return statistics.quantiles(xs, n=100, method="inclusive")[p - 1]


def print_table(rows: list[Row]) -> None:
    fields = ("what", "ours", "anchor", "ratio", "target")
    widths = [max(len(f), *(len(getattr(r, f)) for r in rows)) for f in fields]
    print("  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip())
    for r in rows:
        cells = [getattr(r, f).ljust(w) for f, w in zip(fields, widths, strict=True)]
        mark = {True: "ok", False: "MISSED", None: ""}[r.ok]
        print("  ".join([*cells, mark]).rstrip())


# -- 1. bytes and round trips ------------------------------------------------------------------

def wire_rows(label: str, t: Traffic, max_requests: int, max_bytes: float,
              pouch: str) -> list[Row]:
    p_requests, p_bytes = POUCHDB[pouch]
    return [
        Row(f"{label}: requests", str(t.requests), f"{p_requests} (PouchDB*)",
            f"{t.requests / p_requests:.2f}×", f"≤ {max_requests}", t.requests <= max_requests),
        Row(f"{label}: bytes both ways", kb(t.total), f"{kb(p_bytes)} (PouchDB*)",
            f"{t.total / p_bytes:.2f}×", f"≤ {kb(max_bytes)}", t.total <= max_bytes),
    ]


def measure(proxy: Proxy, label: str, action: Callable[[], Any]) -> tuple[Traffic, float, Any]:
    before = proxy.snapshot()
    start = time.perf_counter()
    result = action()
    took = time.perf_counter() - start
    t = proxy.snapshot() - before
    print(f"  {label}: {t.requests} request(s) over {t.connections} new connection(s), "
          f"{t.up:,} B up + {t.down:,} B down = {kb(t.total)}, {took * 1e3:.0f} ms")
    return t, took, result


def bench_wire(server: Server, devices: Devices, branches: list[str], sizes: Sizes,
               rng: random.Random) -> tuple[list[Row], Device, Proxy]:
    proxy = Proxy(server.port)
    a = devices.enroll("a1", branches[0], proxy.url)
    a.sync()  # the org tree, as `liudong enroll` leaves it
    start = time.perf_counter()
    made = fill_branch(a.store, sizes.members, branches[1], rng)
    built = time.perf_counter() - start
    print(f"branch 1: {made['member']:,} members, {made['contact']:,} contacts, "
          f"{made['flow']:,} outflows to branch 2, made on device a1 in {built:.1f} s")
    up, took, _ = measure(proxy, "a1 uploads them (first sync after making them)", a.sync)
    rows = [Row(f"upload of {sum(made.values()):,} new records", kb(up.total),
                target=f"(info: {up.requests} req, {took:.1f} s)")]

    print("\nbytes on the wire (through the proxy; headers included):")
    b_store = Store.create(devices.root / "a2", PASSPHRASE, kdf=TEST_KDF,
                           org={"name": "本支部", "kind": "branch"})[0]
    devices.stores.append(b_store)
    b = Device(b_store)
    code = make_enroll_code(server.engine, branches[0], proxy.url)["code"]
    enroll, _, _ = measure(proxy, "a2 enrolls at branch 1", lambda: b.enroll(code, name="a2"))
    initial, took, report = measure(proxy, f"a2's initial sync of the {made['member']:,}-member "
                                           "scope", b.sync)
    held = sum(1 for _ in b.store.live("member"))
    print(f"    a2 now holds {held:,} members and "
          f"{sum(1 for _ in b.store.live('contact')):,} contacts, "
          f"{sum(1 for _ in b.store.live('flow')):,} flows; {report.received:,} records "
          f"received in {report.requests} round trip(s)")
    rows += [Row("enroll (before the initial sync)",
                 kb(enroll.total), target=f"(info: {enroll.requests} req)")]
    rows += wire_rows(f"initial sync, {held:,}-member scope", initial, 10, 135 * KB, "initial")
    rows.append(Row("initial sync, wall time on loopback", f"{took:.2f} s"))

    ids = [m["id"] for m in a.store.live("member")]
    member_id = rng.choice(ids)
    a.store.put("member", random_edit(rng, 1), member_id)
    one, _, _ = measure(proxy, "a1 syncs 1 edit", a.sync)
    rows += wire_rows("incremental sync, 1 edit", one, 1, 2 * KB, "1 edit")
    pulled, _, _ = measure(proxy, "a2 pulls that 1 edit", b.sync)
    rows.append(Row("a2 pulls that 1 edit", kb(pulled.total),
                    target=f"(info: {pulled.requests} req)"))

    for n, member_id in enumerate(rng.sample(ids, 100)):
        a.store.put("member", random_edit(rng, n), member_id)  # each edit its own commit
    hundred, _, _ = measure(proxy, "a1 syncs 100 edits (100 commits)", a.sync)
    rows += wire_rows("incremental sync, 100 edits", hundred, 2, 18 * KB, "100 edits")
    pulled, _, _ = measure(proxy, "a2 pulls those 100 edits", b.sync)
    rows.append(Row("a2 pulls those 100 edits", kb(pulled.total),
                    target=f"(info: {pulled.requests} req)"))

    nothing, _, _ = measure(proxy, "a1 syncs with nothing to do", a.sync)
    rows += wire_rows("sync with nothing to do", nothing, 1, 1 * KB, "nothing to do")
    print("  * PouchDB 9 figures are fixed published measurements (DESIGN §7), not this run's")
    b.close()
    return rows, a, proxy


# -- 2. the slow link --------------------------------------------------------------------------

def bench_slow(server: Server, device: Device, proxy: Proxy, sizes: Sizes,
               rng: random.Random) -> list[Row]:
    store = device.store
    ids = [m["id"] for m in store.live("member")]
    first = int(store.meta["dev_seq"]) + 1
    for n in range(sizes.slow_edits):
        store.put("member", random_edit(rng, 1000 + n), rng.choice(ids))  # one commit each
    last = int(store.meta["dev_seq"])
    edited = sorted({op["rec_id"] for op in store.state.outbox})
    print(f"\nslow link: {last - first + 1:,} edits (one commit each) of {len(edited):,} "
          f"members; 64 kbit/s each way, {SLOW_DELAY * 2e3:.0f} ms RTT, {sizes.drops} cuts")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    device.close()  # a fresh connection, through the shaped link
    device.sleep = sleep
    proxy.shape = Shape(Link(SLOW_BANDWIDTH, SLOW_DELAY), Link(SLOW_BANDWIDTH, SLOW_DELAY),
                        drops=sizes.drops, rng=random.Random(SEED))
    errors: list[str] = []
    rounds = 0
    try:
        before = proxy.snapshot()
        start = time.perf_counter()
        while store.state.outbox and rounds < 10:
            rounds += 1
            try:
                device.sync()
            except SyncError as exc:  # all attempts failed: a person would run sync again
                errors.append(exc.en)
        took = time.perf_counter() - start
        t = proxy.snapshot() - before
        cuts = list(proxy.shape.cut_log)
    finally:
        proxy.shape = None
        device.close()
    print(f"  {t.requests} requests over {t.connections} connections, {t.up:,} B up + "
          f"{t.down:,} B down, {t.cuts} cut(s): {'; '.join(cuts) or 'none'}")
    print(f"  {rounds} call(s) of sync(), {len(errors)} gave up ({'; '.join(errors) or '-'}); "
          f"backoff slept {sum(slept):.1f} s in {len(slept)} retries")
    for line in proxy.request_lines[-t.requests:]:
        assert line.startswith("POST /v1/sync"), line

    ops = ops_rows(server.engine, store.device_id, first, last)
    on_server = server_fields(server.engine, edited)
    wrong = [rec_id for rec_id in edited
             if {k: on_server.get(rec_id, {}).get(k) for k in ("phone", "notes")}
             != {k: store.get(rec_id).get(k) for k in ("phone", "notes")}]  # type: ignore[union-attr]
    expected = last - first + 1
    once = (ops.rows == ops.dev_seqs == ops.server_seqs == expected and not wrong
            and not store.state.outbox)
    conflicts = ops.outcomes.get("conflict", 0)
    print(f"  server: {ops.rows:,} op rows for dev_seq {first}–{last}, {ops.dev_seqs:,} "
          f"distinct dev_seq, {ops.server_seqs:,} distinct server_seq; outcomes {ops.outcomes}; "
          f"{len(edited) - len(wrong):,}/{len(edited):,} records hold the device's final values")
    bound = 1.3 * t.total / SLOW_BANDWIDTH + (t.requests + t.connections) * 2 * SLOW_DELAY
    print(f"  bound = 1.3 × {t.total:,} B / {SLOW_BANDWIDTH:,.0f} B/s + ({t.requests} requests "
          f"+ {t.connections} connections) × {SLOW_DELAY * 2:.1f} s = {bound:.1f} s; took "
          f"{took:.1f} s, of which {sum(slept):.1f} s backoff sleep")
    return [
        Row(f"slow link: {expected:,} edits arrive exactly once",
            f"{ops.rows:,} rows, {ops.server_seqs:,} seqs", target=f"{expected:,}, once",
            ok=once),
        Row("slow link: conflicts (no other writer)", f"{conflicts}", target="0",
            ok=conflicts == 0),
        Row("slow link: cuts made", f"{t.cuts}", target=f"{sizes.drops}",
            ok=t.cuts == sizes.drops),
        Row("slow link: bytes both ways", kb(t.total),
            target=f"(info: {t.requests} req, {kb(t.down)} down)"),
        Row("slow link: time", f"{took:.1f} s", f"bound {bound:.1f} s", f"{took / bound:.2f}×",
            "≤ bound", took <= bound),
        Row("slow link: time less backoff sleep", f"{took - sum(slept):.1f} s",
            f"bound {bound:.1f} s", f"{(took - sum(slept)) / bound:.2f}×"),
    ]


# -- 3. throughput -----------------------------------------------------------------------------

OFFERED = 100.0  # syncs/s in all, DESIGN §7's target load


@dataclass
class Load:
    count: int
    elapsed: float
    latencies: list[float]
    errors: list[str]
    cpu: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # as cpu_snapshot

    def cores(self) -> str:
        server, load, database, busy = (c / self.elapsed for c in self.cpu)
        shown = f"database {database:.2f}, " if database else ""
        return (f"cores busy: server {server:.2f}, load generator {load:.2f}, {shown}all else "
                f"{busy - server - load - database:.2f} (machine {busy:.2f} of "
                f"{os.cpu_count()}); server CPU {self.cpu[0] / self.count * 1e3:.1f} ms each")

    @property
    def rate(self) -> float:
        return self.count / self.elapsed


def run_threads(n: int, work: Callable[[int, Callable[[], bool]], tuple[list[float], list[str]]],
                duration: float | None) -> Load:
    """``n`` threads each run ``work(i, go_on)`` at once; ``go_on()`` says whether the time is
    up (always true when ``duration`` is None: the work counts its own)."""
    barrier = threading.Barrier(n + 1)
    results: list[tuple[list[float], list[str]]] = [([], [])] * n
    deadline = [0.0]

    def go_on() -> bool:
        return duration is None or time.perf_counter() < deadline[0]

    def thread(i: int) -> None:
        barrier.wait()
        results[i] = work(i, go_on)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + (duration or 0)
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies = [x for r in results for x in r[0]]
    return Load(len(latencies), elapsed, latencies, [e for r in results for e in r[1]])


def machine_busy() -> float:
    """CPU seconds all cores have spent busy so far (Linux /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def background_load(seconds: float = 1.0) -> float:
    """Cores busy while this benchmark idles: other processes on the machine."""
    before = machine_busy()
    time.sleep(seconds)
    return (machine_busy() - before) / seconds


def _stat(pid: str | int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process so far (Linux /proc); with ``children``, also of its
    children, those running and those that ended (PostgreSQL's backends)."""
    fields = _stat(pid)
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])  # children that ended and were waited for
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if entry.name.isdigit() and (child := _stat(entry.name))[1] == str(pid):
                    total += int(child[11]) + int(child[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int, db_pid: int | None) -> tuple[float, ...]:
    """CPU seconds so far: server, this load generator, database (PostgreSQL started here),
    the whole machine."""
    return (cpu_seconds(server_pid), time.process_time(),
            cpu_seconds(db_pid, children=True) if db_pid else 0.0, machine_busy())


def bench_load(server: Server, db_pid: int | None, devices: list[tuple[Device, str]],
               duration: float, rng: random.Random) -> tuple[Load, Load, Load]:
    """Three runs with the same devices: each syncs again the moment it is answered (a closed
    loop: the most the server does, but each device's wait is then just devices / rate);
    then each syncs on a timetable that offers the target's 100 syncs/s in all (an open
    loop, latency counted from the planned moment, as wrk2 does: what a device waits at that
    load); then the anchor."""
    seeds = [rng.randrange(2**32) for _ in devices]

    def syncing(i: int, go_on: Callable[[], bool]) -> tuple[list[float], list[str]]:
        device, member_id = devices[i]
        local = random.Random(seeds[i])
        latencies: list[float] = []
        errors: list[str] = []
        n = 0
        while go_on():
            n += 1
            device.store.put("member", random_edit(local, n), member_id)
            start = time.perf_counter()
            try:
                device.sync()
            except SyncError as exc:
                errors.append(exc.en)
                continue
            latencies.append(time.perf_counter() - start)
        return latencies, errors

    cpu = cpu_snapshot(server.proc.pid, db_pid)
    load = run_threads(len(devices), syncing, duration)
    load.cpu = tuple(b - a for a, b in zip(cpu, cpu_snapshot(server.proc.pid, db_pid)))

    period = len(devices) / OFFERED  # each device's interval between syncs
    offsets = [rng.uniform(0, period) for _ in devices]

    def paced(i: int, go_on: Callable[[], bool]) -> tuple[list[float], list[str]]:
        device, member_id = devices[i]
        local = random.Random(seeds[i] + 1)
        latencies: list[float] = []
        errors: list[str] = []
        planned = time.perf_counter() + offsets[i]
        n = 0
        while go_on():
            time.sleep(max(0.0, planned - time.perf_counter()))
            n += 1
            device.store.put("member", random_edit(local, 10_000 + n), member_id)
            try:
                device.sync()
            except SyncError as exc:
                errors.append(exc.en)
            else:
                latencies.append(time.perf_counter() - planned)  # late starts count too
            planned += period
        return latencies, errors

    cpu = cpu_snapshot(server.proc.pid, db_pid)
    timed = run_threads(len(devices), paced, duration)
    timed.cpu = tuple(b - a for a, b in zip(cpu, cpu_snapshot(server.proc.pid, db_pid)))
    per_thread = math.ceil(load.count / len(devices))

    def health(i: int, go_on: Callable[[], bool]) -> tuple[list[float], list[str]]:
        latencies: list[float] = []
        errors: list[str] = []
        with httpx.Client(base_url=server.base, timeout=60) as client:
            for _ in range(per_thread):
                start = time.perf_counter()
                try:
                    client.get("/v1/health").raise_for_status()
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - start)
        return latencies, errors

    cpu = cpu_snapshot(server.proc.pid, db_pid)
    anchor = run_threads(len(devices), health, None)
    anchor.cpu = tuple(b - a for a, b in zip(cpu, cpu_snapshot(server.proc.pid, db_pid)))
    return load, timed, anchor


def bench_throughput(engine_name: str, db_url: str, root: Path, log: Path, sizes: Sizes,
                     rng: random.Random, profile: bool, db_pid: int | None) -> list[Row]:
    rows: list[Row] = []
    most = max(sizes.devices)
    with county_server(db_url, log) as server:
        devices = Devices(server, root)
        try:
            start = time.perf_counter()
            _, branches = org_tree(server.engine, most // 2 + 1)
            loader = devices.enroll("loader", branches[-1], server.base)
            loader.sync()
            fill_branch(loader.store, sizes.preload, branches[0], rng)
            loader.sync()
            loader.close()

            def enroll(i: int) -> tuple[Device, str]:
                device = devices.enroll(f"d{i:03d}", branches[i // 2], server.base)
                device.sync()
                member_id = device.store.put(
                    "member", random_member(random.Random(i), device.store.meta["own_org_id"]))
                device.sync()
                return device, member_id

            with ThreadPoolExecutor(8) as pool:
                enrolled = list(pool.map(enroll, range(most)))
            print(f"\n{engine_name}: {len(branches)} branches, {sizes.preload:,} members "
                  f"preloaded, {most} devices enrolled (a member each) in "
                  f"{time.perf_counter() - start:.1f} s")
            for n in sizes.devices:
                idle = background_load()
                print(f"  before {n} devices: {idle:.2f} cores busy with other processes"
                      + ("  (WARNING: the machine is not quiet; figures are low)"
                         if idle > 0.2 else ""))
                spy = py_spy(server.proc.pid, sizes.duration, root / f"spy-{engine_name}-{n}.txt") \
                    if profile else None
                load, timed, anchor = bench_load(server, db_pid, enrolled[:n], sizes.duration,
                                                 rng)
                if spy is not None:
                    spy.wait()
                    summarize_profile(root / f"spy-{engine_name}-{n}.txt")
                p50, p99 = pct(load.latencies, 50), pct(load.latencies, 99)
                a50, a99 = pct(anchor.latencies, 50), pct(anchor.latencies, 99)
                t50, t99 = pct(timed.latencies, 50), pct(timed.latencies, 99)
                print(f"  {n} devices: {load.count:,} syncs of 1 edit in {load.elapsed:.1f} s = "
                      f"{load.rate:.0f}/s, latency p50 {ms(p50)}, p99 {ms(p99)}, max "
                      f"{ms(max(load.latencies))}; {len(load.errors)} error(s) "
                      f"{sorted(set(load.errors))[:3]}; {load.cores()}")
                print(f"  {' ' * len(str(n))}  at {OFFERED:.0f}/s offered (each every "
                      f"{n / OFFERED:.1f} s): {timed.count:,} syncs in {timed.elapsed:.1f} s = "
                      f"{timed.rate:.0f}/s, latency p50 {ms(t50)}, p99 {ms(t99)}, max "
                      f"{ms(max(timed.latencies))}; {len(timed.errors)} error(s); "
                      f"{timed.cores()}")
                print(f"  {' ' * len(str(n))}  anchor: {anchor.count:,} GET /v1/health in "
                      f"{anchor.elapsed:.1f} s = {anchor.rate:.0f}/s, p50 {ms(a50)}, p99 "
                      f"{ms(a99)}; {len(anchor.errors)} error(s); {anchor.cores()}")
                label = f"{engine_name}, {n} devices"
                rows += [
                    Row(f"{label}: syncs/s", f"{load.rate:.0f}/s", f"{anchor.rate:.0f}/s health",
                        f"{load.rate / anchor.rate:.2f}×", "≥ 100/s",
                        load.rate >= 100 and not load.errors),
                    Row(f"{label}: p99 (p50) at 100/s offered", f"{ms(t99)} ({ms(t50)})",
                        f"{ms(a99)} ({ms(a50)}) health", f"{t99 / a99:.2f}×", "< 1 s",
                        t99 < 1.0 and not timed.errors),
                    Row(f"{label}: p99 (p50) flat out", f"{ms(p99)} ({ms(p50)})",
                        target=f"(info: ≈ {n} / rate = {ms(n / load.rate)})"),
                    # CPU time hardly depends on what else runs: the most portable figure.
                    Row(f"{label}: server CPU per request", ms(load.cpu[0] / load.count),
                        f"{ms(anchor.cpu[0] / anchor.count)} health",
                        f"{load.cpu[0] / load.count / (anchor.cpu[0] / anchor.count):.2f}×",
                        f"(info: ≤ {load.count / load.cpu[0]:.0f}/s per core)"),
                ]
        finally:
            for device, _ in locals().get("enrolled", []):
                device.close()
            devices.close()
    return rows


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("  (py-spy not installed: pip install py-spy)")
        return None
    return subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200",
                             "-f", "raw", "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 12) -> None:
    """The functions the server spent its samples in: inclusive (any frame) and own (leaf)."""
    if not path.exists():
        print("  (no profile written)")
        return
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        # "handle_sync (/…/main/sync/server/county.py:527)" → "handle_sync (sync/server/county.py)"
        frames = [re.sub(r":\d+\)$", ")",
                         re.sub(r" \(.*?/(site-packages|lib/python3\.\d+|main)/", " (", f))
                  for f in stack.split(";")]
        total += count
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    print(f"  server profile, py-spy ({total} samples of busy threads; incl = in the stack, "
          "own = on top):")
    ours = sorted(((c, f) for f, c in inclusive.items()
                   if "(sync/" in f or "(store/" in f), reverse=True)[:top]
    for c, f in ours:
        print(f"    {c / total:6.1%} incl  {f}")
    for c, f in sorted(((c, f) for f, c in own.items()), reverse=True)[:top]:
        print(f"    {c / total:6.1%} own   {f}")


# -- the run -----------------------------------------------------------------------------------

def run(root: Path, sizes: Sizes, engines: list[str], profile: bool,
        parts: list[str]) -> list[Row]:
    rng = random.Random(SEED)
    rows: list[Row] = []
    log = root / "server.log"
    url = f"sqlite:///{root / 'county.db'}"
    if "wire" in parts or "slow" in parts:
        with county_server(url, log) as server:
            devices = Devices(server, root / "wire")
            try:
                _, branches = org_tree(server.engine, 2)
                wire, device, proxy = bench_wire(server, devices, branches, sizes, rng)
                rows += wire if "wire" in parts else []
                if "slow" in parts:
                    rows += bench_slow(server, device, proxy, sizes, rng)
                proxy.close()
            finally:
                devices.close()
    for engine_name in engines if "load" in parts else []:
        if engine_name == "sqlite":
            rows += bench_throughput("SQLite", f"sqlite:///{root / 'load.db'}", root / "sqlite",
                                     log, sizes, rng, profile, None)
            continue
        with postgres() as pg:
            if pg is None:
                print("\nPostgreSQL: not found (no /usr/lib/postgresql/*/bin, no "
                      "LIUDONG_TEST_PG_URL): not measured")
                rows.append(Row("PostgreSQL throughput", "not measured", target="≥ 100/s",
                                ok=False))
                continue
            rows += bench_throughput("PostgreSQL", pg[0], root / "pg", log, sizes, rng,
                                     profile, pg[1])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under two minutes")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to put stores and databases (default: a temporary directory)")
    parser.add_argument("--engines", default="sqlite,postgresql",
                        help="throughput on these (comma separated: sqlite, postgresql)")
    parser.add_argument("--parts", default="wire,slow,load",
                        help="which parts to run (comma separated: wire, slow, load)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the server with py-spy during each throughput run")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(f"liudong sync benchmark: {sizes.members:,}-member scope, {sizes.slow_edits:,} edits "
          f"on the slow link, {' and '.join(map(str, sizes.devices))} devices for "
          f"{sizes.duration:.0f} s each; {os.cpu_count()} cores; seed {SEED}")
    with tempfile.TemporaryDirectory(prefix="liudong-bench-", dir=args.dir) as tmp:
        print(f"  in {tmp}")
        start = time.perf_counter()
        rows = run(Path(tmp), sizes, engines, args.profile, args.parts.split(","))
        print(f"\n(ran {time.perf_counter() - start:.0f} s)")
    print()
    print_table(rows)
    print("* PouchDB: fixed published figures from DESIGN §7, not measured in this run")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
