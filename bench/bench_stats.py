"""Benchmark of ``liudong admin stats`` (M-5.1): the county server's statistics, computed by the
code the county screen runs (store/stats.py) over an in-memory view of the server's records.

    python bench/bench_stats.py            # 20,000 members in 40 branches, SQLite
    python bench/bench_stats.py --quick    # 2,000 members
    python bench/bench_stats.py --pg URL   # on PostgreSQL too (an empty database is made there)

The county is built the way a real one fills: each branch's laptop (a real encrypted store)
records its members, flows (a quarter away, half of those hosted by another branch), contacts,
a year of monthly meetings with attendance, its dues ledger and task replies, and syncs with the
real server app (in process). Then, several runs each, median and best:

1. ``admin stats``: ``sync.server.admin.stats`` — the whole table, server columns included;
2. its parts: reading the records in scope as a device would receive them, folding them into a
   ``State`` (store/view.py), and ``org_stats`` over that view;
3. the anchor: reading and parsing the same rows (``live_records`` of every type the statistics
   read) — what any statistics over the server's tables must at least do — and the ratio to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from store import TEST_KDF, Store
from store.stats import org_stats
from store.validate import id_check_char
from sync.client import Device
from sync.server import db
from sync.server.admin import add_org, county_view, make_enroll_code, send_task, stats
from sync.server.app import create_app
from sync.server.county import live_records

PASSPHRASE = "correct horse battery"
SEED = 20261203
TODAY = dt.date.today()
BRANCHES = 40
TOWNS = 4
REPS = 7
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
READ_TYPES = ("org", "member", "flow", "contact", "appraisal", "meeting", "fund", "task",
              "task_reply", "transfer", "probation_review", "conflict")


def day(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


def born_on(n: int) -> dt.date:
    return dt.date(1950, 1, 1) + dt.timedelta(days=n % 12000)


def id_number(n: int) -> str:
    first17 = f"411522{born_on(n):%Y%m%d}{n // 12000 % 1000:03d}"
    return first17 + id_check_char(first17)


def fill_branch(store: Store, index: int, members: int, hosts: list[str],
                rng: random.Random) -> list[str]:
    """One branch's register, 200 records to a commit. Returns the members' ids."""
    home = store.meta["own_org_id"]
    ids: list[str] = []
    for start in range(0, members, 200):
        with store.batch() as b:
            for k in range(start, min(members, start + 200)):
                n = index * members + k
                member_id = b.put("member", {
                    "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                    "id_number": id_number(n), "standing": "full", "home_org_id": home,
                    "joined_on": born_on(n).replace(year=born_on(n).year + 25, day=1).isoformat()})
                ids.append(member_id)
                if rng.random() < 0.5:
                    b.put("contact", {"member_id": member_id, "on": day(rng.randrange(1, 300)),
                                      "channel": "phone", "reached": rng.random() < 0.9})
                if rng.random() < 0.25:
                    host = rng.choice(hosts) if rng.random() < 0.5 else None
                    flow: dict[str, Any] = {
                        "member_id": member_id, "home_org_id": home, "reason": "work",
                        "left_on": day(rng.randrange(10, 700)), "status": "pending_report",
                        "home_contact": "支部书记"}
                    if host:
                        flow["host_org_id"] = host
                    else:
                        flow["external_host"] = "东莞市长安镇党委"
                    b.put("flow", flow)
    with store.batch() as b:
        for month in range(12):
            present = rng.sample(ids, k=len(ids) * 4 // 5)
            there = set(present)
            absent = [{"member_id": m, "reason": "外出"} for m in ids if m not in there]
            b.put("meeting", {"org_id": home, "kind": "theme_day",
                              "held_on": day(15 + 30 * month), "topic": f"第{month + 1}次主题党日",
                              "attendee_ids": present, "absences": absent[:50]})
        for kind, purpose, amount in (("allocation", "education", "2000"),
                                      ("allocation", "activities", "1500"),
                                      ("expense", "activities", f"{rng.randrange(100, 1500)}.50"),
                                      ("expense", "condolence", "300")):
            b.put("fund", {"org_id": home, "on": day(60), "kind": kind, "purpose": purpose,
                           "amount_yuan": amount})
    return ids


def build(url: str, members: int, work: Path) -> tuple[Any, str, int]:
    """A county of ``BRANCHES`` branches under ``TOWNS`` committees, filled through their
    laptops. Returns (engine, county id, records on the server)."""
    engine = db.make_engine(url)
    db.migrate(engine)
    app = create_app(engine)
    http = TestClient(app, base_url="http://county.test")
    county = add_org(engine, {"name": "光山县委", "kind": "county", "division_code": "411522"})
    towns = [add_org(engine, {"name": f"第{t + 1}镇党委", "kind": "committee",
                              "parent_id": county}) for t in range(TOWNS)]
    branches = [add_org(engine, {"name": f"第{i + 1}村党支部", "kind": "branch",
                                 "parent_id": towns[i % TOWNS]}) for i in range(BRANCHES)]
    rng = random.Random(SEED)
    per_branch = members // BRANCHES
    devices = []
    started = time.perf_counter()
    for i, branch in enumerate(branches):
        store, _ = Store.create(work / f"b{i}", PASSPHRASE, kdf=TEST_KDF,
                                org={"name": "本支部", "kind": "branch"})
        device = Device(store, http=http, sleep=lambda s: None)
        device.enroll(str(make_enroll_code(engine, branch, "http://county.test")["code"]))
        device.sync()  # the organizations arrive, as with `liudong enroll`
        fill_branch(store, i, per_branch, [b for b in branches if b != branch], rng)
        report = device.sync()
        assert not report.rejected, report.rejected[:3]
        devices.append(device)
        print(f"\r  branch {i + 1}/{BRANCHES} synced ({time.perf_counter() - started:.0f} s)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    task = send_task(engine, {"issued_by_org_id": county, "target_org_ids": branches,
                              "title": "报送流动党员名册", "due_on": day(5)})
    for device in devices[::2]:
        device.sync()
        device.store.put("task_reply", {"task_id": task, "org_id": device.store.meta[
            "own_org_id"], "status": "done", "done_on": day(6)})
        device.sync()
    for device in devices:
        device.store.close()
    http.close()
    with db.read(engine) as conn:
        count = sum(len(live_records(conn, t)) for t in READ_TYPES)
    return engine, county, count


def timed(action: Callable[[], Any], reps: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return times, result


def anchor(engine: Any) -> int:
    with db.read(engine) as conn:
        return sum(len(live_records(conn, t)) for t in READ_TYPES)


def run(label: str, url: str, members: int, work: Path) -> list[tuple[str, list[float]]]:
    built = work / "built"
    if built.exists():  # --keep: the county of an earlier run
        county, records = built.read_text().split()
        engine = db.make_engine(url)
    else:
        print(f"{label}: building a county of {members:,} members …", file=sys.stderr)
        engine, county, count = build(url, members, work)
        records = str(count)
        built.write_text(f"{county} {records}")
    rows: list[tuple[str, list[float]]] = []
    # interleaved, so that other load on the machine hits all alike
    figures: dict[str, list[float]] = {k: [] for k in (
        "admin stats", "  read + fold into a State", "  org_stats", "anchor: read + parse")}
    table = []
    for _ in range(REPS):
        t, table = timed(lambda: stats(engine, today=TODAY), 1)
        figures["admin stats"] += t
        with db.read(engine) as conn:
            t, view = timed(lambda: county_view(conn, county), 1)
        figures["  read + fold into a State"] += t
        t, _ = timed(lambda: org_stats(view, TODAY), 1)  # noqa: B023
        figures["  org_stats"] += t
        t, _ = timed(lambda: anchor(engine), 1)
        figures["anchor: read + parse"] += t
    engine.dispose()
    total = table[0]
    print(f"{label}: {int(records):,} live records; the county's row: {total['members']:,} members, "
          f"{total['outflow']:,} away, {total['inflow']:,} hosted, attendance "
          f"{total['attendance_rate']}, dues {total['fund_balance']} yuan; {len(table)} rows")
    rows += [(f"{label} {name}", times) for name, times in figures.items()]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 members")
    parser.add_argument("--pg", metavar="URL", help="also on this (empty) PostgreSQL database")
    parser.add_argument("--keep", metavar="DIR", help="build the county here and keep it; a "
                        "later run with the same DIR (and --pg URL) measures it again")
    args = parser.parse_args()
    members = 2_000 if args.quick else 20_000
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        for part in ("sqlite", "pg"):
            (work / part).mkdir(parents=True, exist_ok=True)
        rows += run("SQLite", f"sqlite:///{work / 'county.db'}", members, work / "sqlite")
        if args.pg:
            rows += run("PostgreSQL", args.pg, members, work / "pg")
    print(f"\n{'':44} {'median':>9} {'best':>9}")
    anchors = {name.split()[0]: statistics.median(t) for name, t in rows if "anchor" in name}
    for name, times in rows:
        median = statistics.median(times)
        ratio = "" if "anchor" in name else f"  {median / anchors[name.split()[0]]:.1f}× anchor"
        print(f"{name:44} {median * 1000:8.0f}ms {min(times) * 1000:8.0f}ms{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
