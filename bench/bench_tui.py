"""Benchmark of the interface on a big register, against Textual's DataTable in the same run
(DESIGN §7, issue 9).

    python bench/bench_tui.py              # 20,000 members: a few minutes
    python bench/bench_tui.py --quick      # 2,000 members: a smoke run
    python bench/bench_tui.py --json       # the figures as JSON on stdout (progress on stderr)

A real encrypted store (the real, calibrated KDF) holding 20,000 members with Chinese names,
~5,000 open flows (most to hosts outside the county, some to host branches the county holds),
~400 members hosted here, and contacts; then the app runs headless at 120×40:

1. unlock: from the enter key in the unlock screen to the worklist's first frame, less the KDF
   timed inside the same unlock (``crypto.derive_key``), beside ``Store.open`` timed alone;
2. ``2``: from the key to the members list's first frame with its rows;
3. typing in the search box, key by key: from each key to the last frame in which the list drew
   lines for the new query, once the app is idle again (nearly always the first such frame);
4. the anchor: Textual's ``DataTable`` in a minimal app, the same rows and columns: from the key
   that mounts and fills it to its first frame, then each re-filter (``clear`` and ``add_rows``
   of the rows the same filter finds) for the same keys, to its frame.

What "a frame" is: ``App._display`` is wrapped; a frame counts when the screen hands the
compositor's update to it, and is turned into terminal bytes there as a terminal would be sent
(headless Textual skips that step). A list's frame counts only once the list has drawn lines
(``render_line``) after its data changed (for the DataTable, after it measured the new rows).
Keys go in as ``events.Key`` through the driver, as the terminal's would: Pilot's ``press`` and
``pause`` sleep at least 20 ms per step (``wait_for_idle``), so timing around them measures the
Pilot (a 60 ms floor), and ``pause`` forces a frame the app would draw one timer tick later. The
figures include that tick (at most 1/60 s): it is what the user waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import io
import json
import os
import pstats
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

from bench_store import PASSPHRASE, random_member, timed_kdf
from textual import events
from textual._compositor import CompositorUpdate
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Input

from store import Store, crypto
from store.search import filter_ids
from tui.app import LiudongApp
from tui.view import member_row

SEED = 20240917
SIZE = (120, 40)
TODAY = dt.date.today()
BATCH = 1_000  # records per commit while building: a few large batches
WAIT = 60.0  # seconds to wait for a frame before calling it a failure

# Where members go: host organizations outside the county (text), with the place.
DESTINATIONS = (
    ("440305", "广东省深圳市南山区科技园", "深圳某电子科技有限公司", "南山区科技园综合党委"),
    ("440306", "广东省深圳市宝安区福永街道", "深圳某模具厂", "福永街道非公企业党委"),
    ("310115", "上海市浦东新区张江镇", "上海某生物医药公司", "张江镇两新组织党委"),
    ("330106", "浙江省杭州市西湖区", "杭州某网络科技公司", ""),
    ("320505", "江苏省苏州市虎丘区", "苏州某精密制造公司", "苏州高新区非公企业党委"),
    ("110105", "北京市朝阳区望京街道", "北京某物流公司", ""),
    ("500112", "重庆市渝北区", "重庆某建筑劳务公司", "渝北区流动党员党支部"),
    ("420106", "湖北省武汉市武昌区", "武汉某装饰工程公司", "武昌区两新工委"),
)
OUTSIDE_HOMES = ("安徽省六安市金寨县某村党支部", "湖北省黄冈市麻城市某社区党支部",
                 "四川省南充市某村党支部", "河南省商城县某村党支部")
WORKERS = ("李建国", "王秀英")


def say(*args: Any) -> None:
    print(*args, file=sys.stderr if OPTIONS.json else sys.stdout, flush=True)


@dataclass
class Options:
    json: bool = False


OPTIONS = Options()


# -- the register ------------------------------------------------------------------------------

@dataclass
class Register:
    path: Path
    members: int
    open_flows: int
    contacts: int
    id_suffix: str  # the last four characters of a member's ID number


def _day(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


def _batches(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def build_register(path: Path, members: int, rng: random.Random) -> Register:
    """A branch's store as it is after years of use and a sync: the county's organizations
    (the branch and four host organizations in the same town), ``members`` members of the
    branch, a quarter of them away (an open flow each, most to hosts outside the county), one
    in fifty hosted here from outside, contacts with those away. Committed ``BATCH`` records at
    a time, with the real KDF."""
    store, _ = Store.create(path, PASSPHRASE, kdf=crypto.calibrate())
    with store:
        # Organizations come from the county server; a store made without an organization of
        # its own may write them (as the county's tests do), then takes the branch as its own.
        with store.batch(TODAY) as b:
            county = b.put("org", {"name": "桐庐县委", "kind": "county", "division_code": "330122"})
            town = b.put("org", {"name": "城关镇党委", "kind": "committee", "parent_id": county})
            own = b.put("org", {"name": "城关村党支部", "kind": "branch", "parent_id": town})
            hosts = [b.put("org", {"name": name, "kind": kind, "parent_id": town})
                     for name, kind in (("东关村党支部", "branch"), ("西山村党支部", "branch"),
                                        ("城关镇非公企业党委", "committee"),
                                        ("城关镇流动党员党支部", "mobile_branch"))]
        store.set_meta(own_org_id=own)

        people: list[dict[str, Any]] = []
        numbers: set[str] = set()
        while len(people) < members:  # an ID number belongs to one person
            person = random_member(rng)
            if person["id_number"] not in numbers:
                numbers.add(person["id_number"])
                people.append(person)
        hosted = max(1, members // 50)
        for person in people[:-hosted]:
            person["home_org_id"] = own
        for person in people[-hosted:]:
            person["external_home_org"] = rng.choice(OUTSIDE_HOMES)
        ids: list[str] = []
        for chunk in _batches(people):
            with store.batch(TODAY) as b:
                ids += [b.put("member", p) for p in chunk]

        home_ids, hosted_ids = ids[:-hosted], ids[-hosted:]
        away = rng.sample(home_ids, k=members // 4 - hosted)
        returned = rng.sample([i for i in home_ids if i not in set(away)],
                              k=min(len(home_ids) - len(away), members // 15))
        flows: list[tuple[str, dict[str, Any]]] = []
        for member_id in away:
            left = rng.randint(5, 1500)
            code, address, employer, outside = rng.choice(DESTINATIONS)
            values: dict[str, Any] = {"member_id": member_id, "left_on": _day(left),
                                      "reason": rng.choice(["work"] * 8 + ["study", "residence"]),
                                      "destination_division_code": code,
                                      "destination_address": address,
                                      "destination_employer": employer,
                                      "home_contact": rng.choice(WORKERS)}
            roll = rng.random()
            if roll < 0.15:
                values.update(host_org_id=rng.choice(hosts), destination_division_code="330122",
                              destination_address="浙江省杭州市桐庐县城关镇")
            elif roll < 0.95 and outside:
                values["external_host"] = outside
            if left > 30 and rng.random() < 0.85 and "host_org_id" not in values:
                values.update(status="reported", reported_on=_day(left - rng.randint(3, 25)))
            else:
                values["status"] = "pending_report"
            flows.append((member_id, values))
        for member_id in returned:
            left = rng.randint(500, 1500)
            code, address, employer, outside = rng.choice(DESTINATIONS)
            flows.append((member_id, {
                "member_id": member_id, "left_on": _day(left), "reason": "work",
                "destination_division_code": code, "destination_address": address,
                "external_host": outside or "当地社区党委", "status": "ended",
                "reported_on": _day(left - 10), "ended_on": _day(left - rng.randint(180, 420)),
                "end_reason": "returned"}))
        for member_id in hosted_ids:
            left = rng.randint(10, 700)
            flows.append((member_id, {
                "member_id": member_id, "host_org_id": own, "left_on": _day(left),
                "reason": "work", "destination_division_code": "330122",
                "destination_address": "浙江省杭州市桐庐县城关镇城关村",
                "status": "reported", "reported_on": _day(max(0, left - 7))}))
        flow_of: dict[str, str] = {}
        for chunk in _batches(flows):
            with store.batch(TODAY) as b:
                for member_id, values in chunk:
                    flow_id = b.put("flow", values)
                    if values["status"] != "ended":
                        flow_of[member_id] = flow_id

        contacts: list[dict[str, Any]] = []
        for member_id in away:
            for _ in range(rng.choice((0, 1, 2, 2, 3, 4))):
                reached = rng.random() < 0.85
                contacts.append({
                    "member_id": member_id, "flow_id": flow_of[member_id],
                    "on": _day(rng.randint(1, 400)), "reached": reached,
                    "channel": rng.choice(["phone", "wechat", "wechat", "visit"] if reached
                                          else ["phone", "wechat"]),
                    "by": rng.choice(WORKERS),
                    "summary": "工作稳定，身体健康" if reached else "电话未接通"})
        for chunk in _batches(contacts):
            with store.batch(TODAY) as b:
                for values in chunk:
                    b.put("contact", values)
        suffix = str(people[7]["id_number"])[-4:].lower()
    return Register(path, members, len(flow_of), len(contacts), suffix)


# -- frames ------------------------------------------------------------------------------------

Predicate = Callable[[Any, bool], bool]  # (the screen drawn, did the list draw lines) → done?


class Frames:
    """Every frame an app draws, with the time it was ready for the terminal, and those in
    which a list (an instance of ``lists``) drew lines."""

    def __init__(self, app: App[Any], lists: tuple[type[Widget], ...]) -> None:
        self.app = app
        self.count = 0
        self.list_frames: list[float] = []
        self._drew = False
        self._waiters: list[tuple[Predicate, asyncio.Future[float]]] = []
        self._originals = {cls: cls.render_line for cls in lists}
        for cls, render_line in self._originals.items():
            cls.render_line = self._drawing(render_line)  # type: ignore[method-assign]
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return
            if app.is_headless and isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # the bytes a terminal would get
            now = time.perf_counter()
            self.count += 1
            drew, self._drew = self._drew, False
            if drew:
                self.list_frames.append(now)
            for predicate, future in list(self._waiters):
                if not future.done() and predicate(screen, drew):
                    future.set_result(now)

        app._display = display  # type: ignore[method-assign]

    def _drawing(self, render_line: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
        def drawing(widget: Any, y: int) -> Any:
            self._drew = True
            return render_line(widget, y)
        return drawing

    def close(self) -> None:
        for cls, render_line in self._originals.items():
            cls.render_line = render_line  # type: ignore[method-assign]

    def expect(self, predicate: Predicate) -> asyncio.Future[float]:
        """A future set to the time of the first frame for which ``predicate`` holds."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters = [w for w in self._waiters if not w[1].done()]
        self._waiters.append((predicate, future))
        return future


class Changes:
    """Counts the calls of a widget's method that changes its rows (``set_ids``, ``add_rows``)."""

    def __init__(self, widget: Widget, method: str) -> None:
        self.count = 0
        change = getattr(widget, method)

        def changing(*args: Any, **kwargs: Any) -> Any:
            result = change(*args, **kwargs)
            self.count += 1
            return result

        setattr(widget, method, changing)


def send_key(app: App[Any], key: str) -> None:
    """A key as the terminal driver delivers it."""
    char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


@dataclass
class Timing:
    first: float  # seconds from the key to the first frame that shows its effect
    last: float  # … to the last frame in which the list drew lines, once the app is idle


async def timed_key(pilot: Any, frames: Frames, key: str, shown: Predicate) -> Timing:
    """Send ``key``, wait for the first frame for which ``shown`` holds, then for the app to
    be idle; the last frame that drew a list counts too (a table measures its new rows after
    drawing them once, then draws again)."""
    future = frames.expect(shown)
    start = time.perf_counter()
    send_key(pilot.app, key)
    first = await asyncio.wait_for(future, WAIT)
    await settle(pilot)
    last = max((t for t in frames.list_frames if t >= start), default=first)
    return Timing(first - start, max(first, last) - start)


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.pause()


def keystrokes(id_suffix: str) -> list[str]:
    """What a branch worker types into the search box: a surname in pinyin, letter by letter,
    and back; another; initials (zs: 张三); a phone fragment; an ID-number suffix; a name in
    characters as the IME commits them."""
    seq: list[str] = []
    for word in ("zhang", "wang", "zs", "138", id_suffix, "张伟", "lixiu"):
        seq += list(word)
        seq += ["backspace"] * len(word)
    return seq


def queries(keys: list[str]) -> list[str]:
    """The search box's value after each key."""
    out, value = [], ""
    for key in keys:
        value = value[:-1] if key == "backspace" else value + key
        out.append(value)
    return out


# -- our app -----------------------------------------------------------------------------------

@dataclass
class KeyTiming:
    key: str
    query: str
    rows: int
    first: float
    last: float


@dataclass
class Ours:
    unlock: Timing  # enter → worklist frame
    unlock_kdf: float  # KDF inside that unlock
    unlock_open: float  # Store.open inside that unlock
    members: Timing  # `2` → members frame with rows
    members_again: Timing  # `1`, then `2` again: the screen exists
    keys: list[KeyTiming]


@contextmanager
def timed_store_open() -> Iterator[list[float]]:
    """Seconds spent in ``Store.open`` while the block runs (the unlock screen's thread)."""
    spent: list[float] = []
    original = Store.open

    def wrapper(*args: Any, **kwargs: Any) -> Store:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    Store.open = wrapper  # type: ignore[method-assign,assignment]
    try:
        yield spent
    finally:
        Store.open = original  # type: ignore[method-assign]


async def run_ours(reg: Register, keys: list[str], profile: cProfile.Profile | None) -> Ours:
    from tui.screens.members import MembersScreen
    from tui.screens.worklist import WorklistScreen
    from tui.widgets.record_list import RecordList

    app = LiudongApp(reg.path, today=TODAY)
    frames = Frames(app, (RecordList,))
    try:
        async with app.run_test(size=SIZE, notifications=False) as pilot:
            await settle(pilot)
            box = app.screen.query_one("#secret", Input)
            box.cursor_blink = False
            box.value = PASSPHRASE
            await settle(pilot)

            # 1. unlock: enter → the worklist's first frame
            if profile:
                profile.enable()
            with timed_kdf() as kdf, timed_store_open() as opened:
                unlock = await timed_key(pilot, frames, "enter",
                                         lambda s, _: isinstance(s, WorklistScreen))

            # 2. `2` → the members list's first frame with rows
            def members_shown(screen: Any, _: bool) -> bool:
                return (isinstance(screen, MembersScreen)
                        and bool(screen.query_one(RecordList).ids))

            members = await timed_key(pilot, frames, "2", members_shown)
            await timed_key(pilot, frames, "1", lambda s, _: isinstance(s, WorklistScreen))
            again = await timed_key(pilot, frames, "2", members_shown)

            # 3. typing in the search box
            screen = app.screen
            assert isinstance(screen, MembersScreen)
            search = screen.query_one("#search", Input)
            search.cursor_blink = False
            await pilot.press("slash")
            await settle(pilot)
            assert search.has_focus, "the search box did not take the focus"
            rows = screen.query_one(RecordList)
            changes = Changes(rows, "set_ids")
            typed: list[KeyTiming] = []
            for key, query in zip(keys, queries(keys), strict=True):
                n = changes.count + 1
                took = await timed_key(pilot, frames, key,
                                       lambda s, drew, n=n: drew and changes.count >= n)
                assert search.value == query, (search.value, query)
                typed.append(KeyTiming(key, query, len(rows.ids), took.first, took.last))
            if profile:
                profile.disable()
            await pilot.press("ctrl+q")
    finally:
        frames.close()
    return Ours(unlock, sum(kdf), sum(opened), members, again, typed)


# -- the anchor: Textual's DataTable -----------------------------------------------------------

COLUMNS = ("姓名", "性别", "流动", "流入/流出地", "状态", "最近联系", "手机")


class TableApp(App[None]):
    """The members list as Textual's DataTable gives it: a search box and, after `2`, a table
    of every member, re-filled as the query changes (the same filter as ours)."""

    AUTO_FOCUS = None  # the search box takes the focus after `2`, as ours does after `/`
    BINDINGS = [Binding("2", "table")]  # noqa: RUF012 (Textual declares them so)

    def __init__(self, order: list[str], rows: dict[str, tuple[str, ...]],
                 search: dict[str, str]) -> None:
        super().__init__()
        self.order = order
        self.rows = rows
        self.search = search
        self.table: DataTable[str] | None = None
        self.changes: Changes | None = None

    def compose(self) -> ComposeResult:
        yield Input(id="search")

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False

    async def action_table(self) -> None:
        if self.table is not None:
            return
        table: DataTable[str] = DataTable(cursor_type="row")
        self.table = table
        await self.mount(table)
        self.changes = Changes(table, "add_rows")
        table.add_columns(*COLUMNS)
        table.add_rows(self.rows[i] for i in self.order)

    def on_input_changed(self, event: Input.Changed) -> None:
        table = self.table
        if table is None:
            return
        query = event.value.strip()
        if query:
            matched = set(filter_ids(self.search, query))
            ids = [i for i in self.order if i in matched]
        else:
            ids = self.order
        table.clear()
        table.add_rows(self.rows[i] for i in ids)


@dataclass
class Anchor:
    first: Timing  # `2` → the table's frames with every row
    keys: list[KeyTiming]


async def run_anchor(order: list[str], rows: dict[str, tuple[str, ...]],
                     search: dict[str, str], keys: list[str]) -> Anchor:
    app = TableApp(order, rows, search)
    frames = Frames(app, (DataTable,))

    def shown(n: int) -> Predicate:
        return lambda _, drew: drew and app.changes is not None and app.changes.count >= n

    try:
        async with app.run_test(size=SIZE, notifications=False) as pilot:
            await settle(pilot)
            first = await timed_key(pilot, frames, "2", shown(1))
            assert app.table is not None and app.table.row_count == len(order)
            box = app.query_one(Input)
            box.focus()
            await settle(pilot)
            typed: list[KeyTiming] = []
            for key, query in zip(keys, queries(keys), strict=True):
                assert app.changes is not None
                took = await timed_key(pilot, frames, key, shown(app.changes.count + 1))
                assert box.value == query, (box.value, query)
                typed.append(KeyTiming(key, query, app.table.row_count, took.first, took.last))
            await pilot.press("ctrl+q")
    finally:
        frames.close()
    return Anchor(first, typed)


# -- the run -----------------------------------------------------------------------------------

@dataclass
class Row:
    what: str
    ours: float
    anchor: float | None = None
    target: float | None = None  # seconds; the figure must be at most this
    target_text: str = "(info)"

    @property
    def ok(self) -> bool | None:
        return None if self.target is None else self.ours <= self.target


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def pct(xs: list[float], p: int) -> float:
    """The p-th percentile (nearest rank)."""
    ranked = sorted(xs)
    return ranked[min(len(ranked) - 1, max(0, -(-p * len(ranked) // 100) - 1))]


def time_open(path: Path, times: int) -> tuple[float, float]:
    """Median (whole ``Store.open``, of which the KDF), in seconds."""
    whole, kdfs = [], []
    for _ in range(times):
        with timed_kdf() as kdf:
            start = time.perf_counter()
            store = Store.open(path, PASSPHRASE)
            whole.append(time.perf_counter() - start)
        kdfs.append(sum(kdf))
        store.close()
    return statistics.median(whole), statistics.median(kdfs)


def run(root: Path, members: int, profile_path: Path | None) -> tuple[list[Row], dict[str, Any]]:
    rng = random.Random(SEED)
    say(f"building a store of {members:,} members (real KDF, {BATCH} records a commit) …")
    start = time.perf_counter()
    reg = build_register(root / "store", members, rng)
    say(f"  built in {time.perf_counter() - start:.1f} s: {reg.open_flows:,} open flows, "
        f"{reg.contacts:,} contacts")

    open_whole, open_kdf = time_open(reg.path, 3)
    say(f"Store.open alone, median of 3: {open_whole:.3f} s, of which KDF {open_kdf:.3f} s "
        f"({open_whole - open_kdf:.3f} s beyond)")

    keys = keystrokes(reg.id_suffix)
    profile = cProfile.Profile() if profile_path else None
    say(f"our app, headless {SIZE[0]}×{SIZE[1]}: unlock, `2`, {len(keys)} keys in the search box …")
    ours = asyncio.run(run_ours(reg, keys, profile))
    if profile and profile_path:
        profile.dump_stats(profile_path)
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(30)
        say(text.getvalue())
        say(f"  profile written to {profile_path.name} (figures are inflated by the profiler)")

    say("the anchor: the same rows in Textual's DataTable …")
    with Store.open(reg.path, PASSPHRASE) as store:
        order = list(store.member_order()) if hasattr(store, "member_order") else [
            m["id"] for m in store.live("member")]
        start = time.perf_counter()
        rows = {i: tuple(member_row(store, i)) for i in order}
        say(f"  {len(rows):,} rows computed in {time.perf_counter() - start:.2f} s "
            "(not counted: the table is given them ready)")
        search = dict(store.state.search)
    anchor = asyncio.run(run_anchor(order, rows, search, keys))

    say("\nkeys in the search box: from the key to the last frame that drew the list "
        "(first frame in brackets when earlier), rows shown")
    say(f"  {'query':<10} {'ours':>20} {'rows':>6}   {'DataTable':>20} {'rows':>6}")

    def both(k: KeyTiming) -> str:
        return ms(k.last) + (f" ({ms(k.first)})" if k.first < k.last - 1e-4 else "")

    for o, a in zip(ours.keys, anchor.keys, strict=True):
        say(f"  {o.query!r:<10} {both(o):>20} {o.rows:>6}   {both(a):>20} {a.rows:>6}")

    # ours to the list's last frame, the table to its first (before it measured the rows): the
    # ratios flatter the anchor
    mine = [k.last for k in ours.keys]
    theirs = [k.first for k in anchor.keys]
    settled = [k.last for k in anchor.keys]
    after_kdf = ours.unlock.last - ours.unlock_kdf
    table = [
        Row("unlock → worklist drawn, after the KDF", after_kdf, anchor.first.first, 1.0,
            "≤ 1 s"),
        Row("  unlock, whole (enter → drawn)", ours.unlock.last),
        Row("  of which KDF", ours.unlock_kdf),
        Row("  of which Store.open beyond the KDF", ours.unlock_open - ours.unlock_kdf),
        Row("  of which the interface", ours.unlock.last - ours.unlock_open),
        Row("  Store.open alone, beyond the KDF", open_whole - open_kdf),
        Row("`2` → members list drawn", ours.members.last, anchor.first.first, 0.150,
            "≤ 150 ms"),
        Row("  DataTable filled, settled", anchor.first.last),
        Row("  `2` again (the screen exists)", ours.members_again.last),
        Row("key → updated list, p50", statistics.median(mine), statistics.median(theirs)),
        Row("key → updated list, p95", pct(mine, 95), pct(theirs, 95), 0.050, "≤ 50 ms"),
        Row("key → updated list, max", max(mine), max(theirs)),
        Row("  DataTable re-filter settled, p50", statistics.median(settled)),
        Row("  DataTable re-filter settled, p95", pct(settled, 95)),
    ]
    figures = {
        "members": members, "open_flows": reg.open_flows, "contacts": reg.contacts,
        "size": list(SIZE), "textual": _textual_version(),
        "store_open": {"whole": open_whole, "kdf": open_kdf},
        "ours": {"unlock": vars(ours.unlock), "unlock_kdf": ours.unlock_kdf,
                 "unlock_store_open": ours.unlock_open, "unlock_after_kdf": after_kdf,
                 "members": vars(ours.members), "members_again": vars(ours.members_again),
                 "keys": [vars(k) for k in ours.keys]},
        "datatable": {"first_paint": vars(anchor.first),
                      "keys": [vars(k) for k in anchor.keys]},
        "rows": [{"what": r.what.strip(), "ours": r.ours, "anchor": r.anchor,
                  "target": r.target, "ok": r.ok} for r in table],
    }
    return table, figures


def _textual_version() -> str:
    from importlib.metadata import version

    return version("textual")


def load_warning() -> None:
    """The machine's load: other processes busy on these cores slow every figure (the ratios
    less, but ours and the anchor run one after the other, not interleaved)."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    say(f"  load average {load:.2f} on {cores} cores"
        + (" — busy: the figures are high" if load > cores / 2 else ""))


def print_table(rows: list[Row]) -> None:
    cells = [(r.what, ms(r.ours), ms(r.anchor) if r.anchor is not None else "",
              f"{r.ours / r.anchor:.3f}×" if r.anchor else "", r.target_text,
              {True: "PASS", False: "MISS", None: ""}[r.ok]) for r in rows]
    head = ("what", "ours", "DataTable", "ratio", "target", "")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    for c in [head, *cells]:
        say("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000, help="members (default 20,000)")
    parser.add_argument("--quick", action="store_true", help="2,000 members: a smoke run")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as JSON on stdout (progress on stderr)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="cProfile our app (unlock, `2`, keys) into FILE; prints the top")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to put the store (default: a temporary directory)")
    args = parser.parse_args()
    OPTIONS.json = args.json
    members = 2_000 if args.quick else args.members
    say(f"liudong interface benchmark: {members:,} members, seed {SEED}, "
        f"Textual {_textual_version()}")
    load_warning()
    with tempfile.TemporaryDirectory(prefix="liudong-bench-tui-", dir=args.dir) as tmp:
        rows, figures = run(Path(tmp), members, args.profile)
    load_warning()
    say()
    print_table(rows)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=1))
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
