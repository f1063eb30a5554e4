"""Benchmarks of the local store against SQLCipher, measured in the same run (DESIGN §7).

    python bench/bench_store.py            # 200 / 20,000 members, 200,000 journal ops
    python bench/bench_store.py --quick    # 200 / 2,000 members, 20,000 ops (under a minute)

Figures, each beside an anchor timed in the same process on the same filesystem:

1. durable commit of one member edit (``store.put``), against one ``UPDATE`` + ``COMMIT`` in
   SQLCipher with ``journal_mode=WAL`` and ``synchronous=FULL``; the two are interleaved;
2. opening the large store (KDF timed inside the same call), against keying a SQLCipher
   database of the same rows with its default PBKDF2 and counting them;
3. search as you type, against a ``LIKE`` scan over the same rows with the same readings;
4. commits while a compaction runs beside them (DESIGN §2.4: no commit waits for one), against
   the same commits with no compaction running;
5. opening after a sync (every op acknowledged, a ``sync`` entry in the journal), against
   parsing every retained op, which opening did before the ops were kept one per line;
6. the open flow of a member (an index), against scanning the flows;
7. a TinyDB query over the members (``Store.query``), against a plain comprehension over the
   same records.

Needs ``sqlcipher3-binary`` (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlcipher3
from tinydb import Query

from store import TEST_KDF, KdfParams, Store, crypto
from store.register import open_flow
from store.search import name_readings
from store.validate import id_check_char

PASSPHRASE = "correct horse battery"
ORG = {"name": "城关村党支部", "kind": "branch", "division_code": "330122"}
SEED = 20240611
BATCH = 100  # ops per commit while building
TODAY = dt.date.today()


@dataclass(frozen=True)
class Sizes:
    small: int  # members, for commit@small
    large: int  # members, for commit@large, open and search
    ops: int  # journal ops in the large store's history
    commits: int  # measured commits per store
    opens: int  # measured opens
    search_reps: int  # runs per search query


FULL = Sizes(small=200, large=20_000, ops=200_000, commits=200, opens=3, search_reps=15)
QUICK = Sizes(small=200, large=2_000, ops=20_000, commits=200, opens=3, search_reps=15)


# -- plausible people --------------------------------------------------------------------------

# The hundred most common surnames, in order, plus a few that read differently as surnames.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤"
)
RARE_SURNAMES = ("单", "解", "仇", "查", "翟", "欧阳", "司马", "诸葛", "区", "缪")
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国文红玉兰春梅海波辉鹏飞斌宇浩凯健俊"
    "帆旭宁龙林欣晨雪琳晶婷倩颖佳慧萍玲丹燕云峰鑫亮成志新东晓小立永长重乐朝子嘉思雨博轩然宏"
    "德荣福贵生祥金凤琴兵彬"
)
REGIONS = ("330122", "330122", "330122", "330106", "330102", "330110", "330182", "320106",
           "340104", "360102", "440106", "510107")
EDUCATION = (("junior", 20), ("senior", 25), ("college", 20), ("bachelor", 28), ("master", 6),
             ("doctor", 1))
ETHNICITY = (("汉族", 94), ("畲族", 3), ("回族", 2), ("满族", 1))
PLACES = ("杭州", "宁波", "上海", "苏州", "深圳", "广州", "义乌", "成都")


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def random_name(rng: random.Random) -> str:
    if rng.random() < 0.02:
        surname = rng.choice(RARE_SURNAMES)
    else:  # roughly Zipf: 王, 李 and 张 are each about 7% of people
        surname = rng.choices(SURNAMES, weights=[1 / (r + 4) for r in range(len(SURNAMES))])[0]
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def random_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def random_member(rng: random.Random) -> dict[str, Any]:
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
    member: dict[str, Any] = {
        "name": random_name(rng),
        "gender": gender,
        "birth_date": born.isoformat(),
        "ethnicity": _weighted(rng, ETHNICITY),
        "id_number": first17 + id_check_char(first17),
        "phone": random_phone(rng),
        "education": _weighted(rng, EDUCATION),
        "standing": "full",
        "joined_on": joined.isoformat(),
    }
    if rng.random() < 0.3:
        member["notes"] = f"在{rng.choice(PLACES)}务工，每月电话联系"
    return member


def random_edit(rng: random.Random, n: int) -> dict[str, Any]:
    """One realistic change to a member: a new phone number or a dated note."""
    if rng.random() < 0.5:
        return {"phone": random_phone(rng)}
    return {"notes": f"第{n}次联系：在{rng.choice(PLACES)}务工，情况良好"}


# -- our store ---------------------------------------------------------------------------------

def build_store(path: Path, members: list[dict[str, Any]], ops: int, kdf: KdfParams,
                rng: random.Random) -> None:
    """A store holding ``members`` and ``ops`` journal ops in all, committed ``BATCH`` at a time
    (compaction runs by itself as the journal grows)."""
    store, _ = Store.create(path, PASSPHRASE, kdf=kdf, org=dict(ORG))
    with store:
        org_id = store.meta["own_org_id"]
        ids = []
        for start in range(0, len(members), BATCH):
            with store.batch() as b:
                for m in members[start:start + BATCH]:
                    ids.append(b.put("member", {**m, "home_org_id": org_id}))
        while (done := int(store.meta["dev_seq"])) < ops:
            with store.batch() as b:
                for rec_id in rng.sample(ids, min(BATCH, ops - done, len(ids))):
                    b.put("member", random_edit(rng, done), rec_id)


@contextmanager
def timed_kdf() -> Iterator[list[float]]:
    """Seconds spent in ``crypto.derive_key`` while the block runs (keyslots calls it through
    the module, so wrapping the attribute sees every call)."""
    spent: list[float] = []
    original = crypto.derive_key

    def wrapper(*args: Any, **kwargs: Any) -> bytes:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    crypto.derive_key = wrapper  # type: ignore[assignment]
    try:
        yield spent
    finally:
        crypto.derive_key = original  # type: ignore[assignment]


def time_open(path: Path) -> tuple[float, float]:
    """(whole open, of which the KDF), in seconds."""
    with timed_kdf() as kdf:
        start = time.perf_counter()
        store = Store.open(path, PASSPHRASE)
        took = time.perf_counter() - start
    store.close()
    return took, sum(kdf)


# -- the SQLCipher anchor ----------------------------------------------------------------------

def sql_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sqlcipher_connect(path: Path) -> sqlcipher3.Connection:
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = {sql_quote(PASSPHRASE)}")
    conn.execute("PRAGMA journal_mode = WAL").fetchall()
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def sqlite_row(doc: dict[str, Any]) -> tuple[str, ...]:
    readings = name_readings(doc["name"])
    rest = {k: v for k, v in doc.items() if k not in ("id", "name", "phone", "id_number")}
    return (doc["id"], doc["name"], " ".join("".join(r) for r in readings),
            " ".join("".join(s[0] for s in r) for r in readings), doc.get("phone", ""),
            doc.get("id_number", ""), json.dumps(rest, ensure_ascii=False))


def build_sqlcipher(path: Path, store: Store) -> None:
    """A SQLCipher database holding the same members as ``store``, readings included."""
    conn = sqlcipher_connect(path)
    conn.execute("CREATE TABLE members (id TEXT PRIMARY KEY, name TEXT, pinyin TEXT, "
                 "initials TEXT, phone TEXT, id_number TEXT, doc TEXT NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [sqlite_row(m) for m in store.live("member")])
    conn.execute("COMMIT")
    conn.close()


def time_sqlcipher_open(path: Path) -> float:
    start = time.perf_counter()
    conn = sqlcipher_connect(path)
    conn.execute("SELECT count(*) FROM members").fetchone()
    took = time.perf_counter() - start
    conn.close()
    return took


SEARCH_SQL = ("SELECT id, name, phone, doc FROM members WHERE name LIKE ?1 OR pinyin LIKE ?1 "
              "OR initials LIKE ?1 OR phone LIKE ?1 OR id_number LIKE ?2")


# -- measuring ---------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[8]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class CommitFigures:
    ours: list[float]
    anchor: list[float]
    compactions: int


def measure_commits(store: Store, db: Path, count: int, rng: random.Random) -> CommitFigures:
    """``count`` commits of one new phone number, each made in ``store`` and then the same in
    the SQLCipher database ``db``, interleaved so that drift hits both alike."""
    ids = [m["id"] for m in store.live("member")]
    ours: list[float] = []
    anchor: list[float] = []
    gen = store.gen
    conn = sqlcipher_connect(db)

    def sqlcipher_edit(rec_id: str, phone: str) -> None:
        conn.execute("BEGIN")
        conn.execute("UPDATE members SET phone = ? WHERE id = ?", (phone, rec_id))
        conn.execute("COMMIT")

    for i in range(count + 10):  # the first ten warm up
        rec_id, phone = rng.choice(ids), random_phone(rng)
        t_ours = timed(lambda: store.put("member", {"phone": phone}, rec_id))  # noqa: B023
        t_anchor = timed(lambda: sqlcipher_edit(rec_id, phone))  # noqa: B023
        if i >= 10:
            ours.append(t_ours)
            anchor.append(t_anchor)
    conn.close()
    return CommitFigures(ours, anchor, store.gen - gen)


def report_commits(label: str, f: CommitFigures) -> None:
    print(f"  {label}: ours median {ms(statistics.median(f.ours))}, p90 {ms(p90(f.ours))}, "
          f"max {ms(max(f.ours))} ({f.compactions} compaction(s) among them)")
    print(f"  {' ' * len(label)}  SQLCipher median {ms(statistics.median(f.anchor))}, "
          f"p90 {ms(p90(f.anchor))}, max {ms(max(f.anchor))}")


# -- living under an interactive app (DESIGN §2.4) -----------------------------------------------

def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98]


def bench_commits_during_compaction(store: Store, count: int, rng: random.Random) -> list[Row]:
    """``count`` commits of one edit while a compaction runs beside them (a new one is started
    whenever the last one ended), against as many with none running, interleaved in rounds."""
    ids = store.member_order()
    during: list[float] = []
    alone: list[float] = []
    compactions = 0
    started = time.perf_counter()
    while len(during) < count:
        store.wait_for_compaction()
        for _ in range(10):  # none running
            rec_id, phone = rng.choice(ids), random_phone(rng)
            alone.append(timed(lambda: store.put("member", {"phone": phone}, rec_id)))  # noqa: B023
        if store.compact_in_background():
            compactions += 1
        while store._compactor is not None and len(during) < count:
            rec_id, phone = rng.choice(ids), random_phone(rng)
            took = timed(lambda: store.put("member", {"phone": phone}, rec_id))  # noqa: B023
            if store._compactor is not None:  # still running when the commit returned
                during.append(took)
    store.wait_for_compaction()
    spent = time.perf_counter() - started
    print(f"\ncommits while a compaction runs ({compactions} compaction(s), {spent:.1f} s): "
          f"median {ms(statistics.median(during))}, p99 {ms(p99(during))}, "
          f"max {ms(max(during))} over {len(during)} commits; with none running: median "
          f"{ms(statistics.median(alone))}, p99 {ms(p99(alone))}")
    return [Row("commit during compaction p50", ms(statistics.median(during)),
                ms(statistics.median(alone)), ratio(statistics.median(during),
                                                    statistics.median(alone))),
            Row("commit during compaction p99", ms(p99(during)), ms(p99(alone)),
                ratio(p99(during), p99(alone)), "≤ 20 ms", p99(during) <= 0.020)]


def bench_open_after_sync(path: Path, sizes: Sizes) -> list[Row]:
    """Acknowledge every op (as a sync does), compact, and commit one more ``sync`` entry:
    opening replays it. Anchor: parsing every retained op, which that replay did before."""
    with Store.open(path, PASSPHRASE) as store:
        head = int(store.meta["dev_seq"])
        store.commit({"k": "sync", "acked": head, "applied": [], "cursor": 1})
        store.compact()
        store.commit({"k": "sync", "acked": head, "applied": [[head, 99]], "cursor": 2,
                      "changes": [], "removes": []})
        retained = len(store.state.ops)
    opens, parses = [], []
    for _ in range(sizes.opens):
        took, in_kdf = time_open(path)
        opens.append(took - in_kdf)
        with Store.open(path, PASSPHRASE) as store:
            parses.append(timed(lambda: store.state.ops))
    ours, anchor = statistics.median(opens), statistics.median(parses)
    print(f"\nopen after a sync, {retained:,} acknowledged ops retained: {ours:.3f} s beyond "
          f"the KDF; parsing every op (what that open did before) {anchor:.3f} s more")
    return [Row(f"open after sync ({retained // 1000}k ops) beyond KDF", f"{ours:.3f} s",
                f"+{anchor:.3f} s", target="≤ 1.5 s", ok=ours <= 1.5)]


def add_flows(store: Store, count: int, rng: random.Random) -> None:
    members = rng.sample(store.member_order(), count)
    for start in range(0, count, BATCH):
        with store.batch() as b:
            for member_id in members[start:start + BATCH]:
                b.put("flow", {"member_id": member_id, "reason": "work",
                               "left_on": f"2026-0{rng.randrange(1, 10)}-01",
                               "status": "pending_report"})


def bench_open_flow(store: Store, reps: int, rng: random.Random) -> list[Row]:
    flows = list(store.live("flow"))
    members = [f["member_id"] for f in rng.sample(flows, min(200, len(flows)))]
    members += rng.sample(store.member_order(), 200)  # and some without a flow

    def scan(member_id: str) -> dict[str, Any] | None:
        found = [f for f in store.live("flow") if f.get("member_id") == member_id
                 and f.get("status") != "ended"]
        return max(found, key=lambda f: f["left_on"]) if found else None

    for m in members[:50]:
        assert open_flow(store, m) == scan(m)
    ours = statistics.median(timed(lambda: [open_flow(store, m) for m in members])
                             for _ in range(reps)) / len(members)
    anchor = statistics.median(timed(lambda: [scan(m) for m in members[:20]])
                               for _ in range(3)) / 20
    print(f"\nopen flow of a member ({len(flows):,} flows): index {ours * 1e6:.1f} µs a call, "
          f"scan of the flows {ms(anchor)} a call")
    return [Row(f"open_flow ({len(flows) // 1000}k flows)", f"{ours * 1e6:.1f} µs",
                ms(anchor), ratio(ours, anchor), "≤ 0.05 ms", ours <= 0.00005)]


def bench_query(store: Store, reps: int) -> list[Row]:
    """TinyDB over the state's own records vs a comprehension over the same records."""
    members = store.state.table("member")
    cond = (Query().education == "master") & (Query().gender == "female")

    def tinydb_uncached() -> list[Any]:
        members.clear_cache()
        return store.query("member", cond)

    def plain() -> list[Any]:
        return [m for m in store.live("member") if m.get("education") == "master"
                and m.get("gender") == "female"]

    assert {m["id"] for m in tinydb_uncached()} == {m["id"] for m in plain()}
    ours = statistics.median(timed(tinydb_uncached) for _ in range(reps))
    cached = statistics.median(timed(lambda: store.query("member", cond)) for _ in range(reps))
    anchor = statistics.median(timed(plain) for _ in range(reps))
    order = statistics.median(timed(store.member_order) for _ in range(reps))
    n = len(plain())
    print(f"\nquery over {len(store.member_order()):,} members ({n} hits): TinyDB "
          f"{ms(ours)} (cached {ms(cached)}), plain comprehension {ms(anchor)}; "
          f"member_order {ms(order)}")
    return [Row("TinyDB query, uncached", ms(ours), ms(anchor), ratio(ours, anchor)),
            Row("TinyDB query, cached", ms(cached), ms(anchor), ratio(cached, anchor)),
            Row("member_order (list order)", ms(order), target="≤ 20 ms", ok=order <= 0.020)]


# -- the run -----------------------------------------------------------------------------------

@dataclass
class Row:
    what: str
    ours: str
    anchor: str = ""
    ratio: str = ""
    target: str = "(info)"
    ok: bool | None = None


def ratio(ours: float, anchor: float) -> str:
    return f"{ours / anchor:.2f}×"


def bench_kdf() -> tuple[KdfParams, list[Row]]:
    """The real KDF, as ``init`` would choose it on this machine."""
    start = time.perf_counter()
    kdf = crypto.calibrate()
    calibrating = time.perf_counter() - start
    took = timed(lambda: crypto.derive_key(b"benchmark", b"\0" * 16, kdf))
    print(f"KDF: calibrated {kdf.to_json()} in {calibrating:.1f} s; one derivation {took:.3f} s")
    return kdf, [Row("KDF (calibrated)", f"{took:.3f} s", target="0.3–0.5 s",
                     ok=0.3 <= took <= 0.5)]


def bench_open(path: Path, db: Path, sizes: Sizes) -> list[Row]:
    opens, kdfs, anchors = [], [], []
    for _ in range(sizes.opens):
        took, in_kdf = time_open(path)
        opens.append(took)
        kdfs.append(in_kdf)
        anchors.append(time_sqlcipher_open(db))
    beyond = statistics.median(o - k for o, k in zip(opens, kdfs, strict=True))
    ours, anchor = statistics.median(opens), statistics.median(anchors)
    print(f"open, median of {sizes.opens}: ours {ours:.3f} s, of which KDF "
          f"{statistics.median(kdfs):.3f} s → {beyond:.3f} s beyond the KDF; "
          f"SQLCipher open + count(*) {anchor:.3f} s")
    size = f"{sizes.large // 1000}k/{sizes.ops // 1000}k"
    return [Row(f"open {size} beyond KDF", f"{beyond:.3f} s", target="≤ 1.5 s",
                ok=beyond <= 1.5),
            Row(f"open {size} incl. KDF", f"{ours:.3f} s", f"{anchor:.3f} s",
                ratio(ours, anchor))]


def bench_search(store: Store, db: Path, queries: list[str], reps: int) -> list[Row]:
    print(f"\nsearch as you type, median of {reps} runs:")
    conn = sqlcipher_connect(db)
    worst = (0.0, 0.0, "")
    for q in queries:
        params = (f"%{q}%", f"%{q}")  # substring of name, readings and phone; ID-number suffix
        ours = statistics.median(timed(lambda: store.search_members(q)) for _ in range(reps))  # noqa: B023
        anchor = statistics.median(timed(lambda: conn.execute(SEARCH_SQL, params).fetchall())  # noqa: B023
                                   for _ in range(reps))
        hits = len(store.search_members(q)), len(conn.execute(SEARCH_SQL, params).fetchall())
        print(f"  {q!r:>12}: ours {ms(ours):>9} ({hits[0]:>5} hits)   "
              f"SQLCipher {ms(anchor):>9} ({hits[1]:>5} hits)   {ratio(ours, anchor)}")
        worst = max(worst, (ours, anchor, q))
    conn.close()
    ours, anchor, q = worst
    return [Row(f"search, slowest query ({q})", ms(ours), ms(anchor), ratio(ours, anchor),
                "≤ 20 ms", ours <= 0.020)]


def commit_rows(small: CommitFigures, large: CommitFigures, sizes: Sizes) -> list[Row]:
    rows = []
    for n, f in ((sizes.small, small), (sizes.large, large)):
        ours, anchor = statistics.median(f.ours), statistics.median(f.anchor)
        rows.append(Row(f"commit @{n:,} median", ms(ours), ms(anchor), ratio(ours, anchor),
                        "≤ 2×", ours / anchor <= 2))
    scaling = statistics.median(large.ours) / statistics.median(small.ours)
    anchor_scaling = statistics.median(large.anchor) / statistics.median(small.anchor)
    rows.append(Row(f"commit @{sizes.large:,} / @{sizes.small}", f"{scaling:.2f}",
                    f"{anchor_scaling:.2f}", target="≤ 1.5", ok=scaling <= 1.5))
    return rows


def run(root: Path, sizes: Sizes, rng: random.Random) -> list[Row]:
    kdf, rows = bench_kdf()

    # 1a. commits at the small size (its KDF plays no part, so the light test one).
    print(f"\nbuilding a store of {sizes.small:,} members …")
    small_path, small_db = root / "small", root / "anchor-small.db"
    build_store(small_path, [random_member(rng) for _ in range(sizes.small)], 0, TEST_KDF, rng)
    with Store.open(small_path, PASSPHRASE) as store:
        build_sqlcipher(small_db, store)
        small = measure_commits(store, small_db, sizes.commits, rng)
    print(f"durable commit of one edit, {sizes.commits} commits:")
    report_commits(f"@{sizes.small:,}", small)

    # 2. the large store, with the real KDF: open time.
    print(f"\nbuilding a store of {sizes.large:,} members and {sizes.ops:,} ops "
          f"({BATCH} ops per commit) …")
    large_path, large_db = root / "large", root / "anchor-large.db"
    start = time.perf_counter()
    members = [random_member(rng) for _ in range(sizes.large)]
    build_store(large_path, members, sizes.ops, kdf, rng)
    print(f"  built in {time.perf_counter() - start:.1f} s")
    with Store.open(large_path, PASSPHRASE) as store:
        build_sqlcipher(large_db, store)
        journal = (large_path / f"journal-{store.gen:08d}").stat().st_size
        print(f"  generation {store.gen}: snapshot {store.snapshot_size / 1e6:.2f} MB, journal "
              f"{journal / 1e6:.2f} MB (compaction past "
              f"{max(store.compact_min, store.snapshot_size // 2) / 1e6:.2f} MB), "
              f"{len(store.state.outbox):,} ops in the outbox")
    rows += bench_open(large_path, large_db, sizes)

    with Store.open(large_path, PASSPHRASE) as store:
        # 3. search as you type, by initials, pinyin, a character, phone digits, an ID-number
        # suffix and a whole name in characters and in pinyin.
        name = members[7]["name"]
        queries = ["zs", "zhang", "张", "138", "002x", name, "".join(name_readings(name)[0])]
        rows += bench_search(store, large_db, queries, sizes.search_reps)

        # 1b. commits at the large size, on the store with the long history.
        large = measure_commits(store, large_db, sizes.commits, rng)
        print(f"\ndurable commit of one edit, {sizes.commits} commits:")
        report_commits(f"@{sizes.large:,}", large)
        rows += commit_rows(small, large, sizes)

        # A whole compaction, in the caller's thread (commits no longer wait for one).
        took = timed(store.compact)
        print(f"one compaction at {sizes.large:,}: {took:.3f} s")
        rows.append(Row(f"compaction @{sizes.large:,}", f"{took:.3f} s"))

        # 4. commits while a compaction runs beside them.
        rows += bench_commits_during_compaction(store, sizes.commits, rng)

        # 6, 7. indexes and queries, with a quarter as many flows as members.
        add_flows(store, sizes.large // 4, rng)
        store.wait_for_compaction()  # the flows' commits may have started one: not measured
        rows += bench_open_flow(store, sizes.search_reps, rng)
        rows += bench_query(store, sizes.search_reps)

    # 5. opening after a sync.
    rows += bench_open_after_sync(large_path, sizes)
    return rows


def print_table(rows: list[Row]) -> None:
    fields = ("what", "ours", "anchor", "ratio", "target")
    widths = [max(len(f), *(len(getattr(r, f)) for r in rows)) for f in fields]
    print("  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip())
    for r in rows:
        cells = [getattr(r, f).ljust(w) for f, w in zip(fields, widths, strict=True)]
        mark = {True: "ok", False: "MISSED", None: ""}[r.ok]
        print("  ".join([*cells, mark]).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to put the stores (default: a temporary directory)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    version = sqlcipher3.connect(":memory:").execute("PRAGMA cipher_version").fetchone()[0]
    print(f"liudong store benchmark: {sizes.small:,} / {sizes.large:,} members, "
          f"{sizes.ops:,} journal ops, seed {SEED}; anchor SQLCipher {version}")
    with tempfile.TemporaryDirectory(prefix="liudong-bench-", dir=args.dir) as tmp:
        print(f"  in {tmp}")
        rows = run(Path(tmp), sizes, random.Random(SEED))
    print()
    print_table(rows)
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
