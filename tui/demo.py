"""``liudong demo``: a county server on loopback, a demo register, and the terminal interface.

On a fresh machine, in a few seconds: ``liudong serve`` starts as a child process (TLS, a free
port, its database beside the demo store); the county's organizations and tasks are set up as
``liudong admin`` does; three laptops enroll with one-time codes — the demo branch, a second
branch that hosts some of its members and sends it some of its own, and the town committee — and
fill their registers through the store API, syncing between the steps as real laptops would.
Then the town committee and the demo branch change the same fields at once, so the demo store
ends with open sync conflicts and a write the server refused. The interface opens on the demo
store with background sync against the still-running server; when it closes, the server stops.

``--no-interface`` (or no terminal) prints a summary instead. No child process outlives the
demo: the server is stopped on every way out, and on Linux it also dies with its parent.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from store import KdfParams, Store, WrongPassphrase
from tui.demo_data import (
    REGION,
    Orgs,
    People,
    Story,
    build_home,
    build_host,
    edit_for_conflict,
    host_here,
    host_records,
    newcomer,
)
from tui.output import t

DEMO_PASSPHRASE = "liudong-demo"
# Fixed, moderate key-derivation parameters instead of calibrating (which takes ~2 s): the demo
# stores hold made-up people, and the interface unlocks in a fraction of a second.
DEMO_KDF = KdfParams("argon2id", memory_kib=64 << 10, iterations=3, lanes=2)
SECRET_ENV = ("LIUDONG_PASSPHRASE", "LIUDONG_NEW_PASSPHRASE", "LIUDONG_RECOVERY_KEY",
              "LIUDONG_BACKUP_PASSPHRASE")


class Files:
    """Where the demo keeps its things: the demo store and, beside it, the other laptops'
    stores and the county server's database and log."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.host = store.with_name(store.name + "-b")
        self.town = store.with_name(store.name + "-town")
        self.db = store.with_name(store.name + "-county.db")
        self.log = store.with_name(store.name + "-county.log")

    def clear(self) -> None:
        for directory in (self.store, self.host, self.town):
            shutil.rmtree(directory, ignore_errors=True)
        for suffix in ("", "-wal", "-shm", "-writelock"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        self.log.unlink(missing_ok=True)


class CountyServer:
    """``liudong serve`` as a child process on a free loopback port (``--port 0``: the server
    binds it itself and prints its address, so no other program can take it in between)."""

    def __init__(self, db: Path, log: Path) -> None:
        self.db, self.log_path = db, log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        env.setdefault("PYTHONUNBUFFERED", "1")
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tui.cli", "serve", "--db", str(self.db), "--host",
                 "127.0.0.1", "--port", "0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        finally:
            log.close()

    def wait(self, timeout: float = 30) -> str:
        """The server's address, once it answers."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"https://127\.0\.0\.1:\d+", self.log_path.read_text("utf-8",
                                                                               "replace"))
            if found:
                self.url = found.group(0)
                break
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url or not self._healthy(deadline):
            self.stop()
            from tui.cli import CliError

            raise CliError(f"演示用的县级服务器未能启动（日志：{self.log_path}）",
                           f"the demo's county server did not start (log: {self.log_path})",
                           code=1)
        return self.url

    def _healthy(self, deadline: float) -> bool:
        import httpx

        # Loopback, and only to see that it answers: the laptops pin its certificate when
        # they enroll.
        while time.monotonic() < deadline and self.process and self.process.poll() is None:
            try:
                httpx.get(f"{self.url}/v1/health", verify=False, timeout=2).raise_for_status()
                return True
            except httpx.HTTPError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # uvicorn shuts down gracefully on SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM if the demo dies, even by
    SIGKILL, so the server never outlives it (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl-C, so ``finally`` stops the
    server."""
    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    old: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                old[sig] = signal.signal(sig, leave)
    except ValueError:  # not the main thread: nothing to install
        pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _interface() -> tuple[Callable[..., int] | None, str]:
    """The Textual interface's entry point, or why it cannot be loaded."""
    try:
        from tui.app import run_interface
    except ImportError as exc:
        return None, str(exc)
    return run_interface, ""


def run_demo(args: argparse.Namespace) -> int:
    store_dir = Path(args.store).expanduser() if args.store else \
        Path(args.dir).expanduser() / "demo-store"
    if args.members < 50:
        from tui.cli import CliError

        raise CliError("--members 至少为 50", "--members must be at least 50")
    files = Files(store_dir)
    if (store_dir / "keyslots").exists():
        try:
            Store.open(store_dir, DEMO_PASSPHRASE).close()
        except WrongPassphrase:
            print(t(f"{store_dir} 中已有一个不是演示用的存储，请用 --dir 另选目录",
                    f"{store_dir} holds a store that is not the demo; choose another --dir"),
                  file=sys.stderr)
            return 2
    files.clear()
    interactive = not args.no_interface and sys.stdin.isatty() and sys.stdout.isatty()
    interface, missing = _interface() if interactive else (None, "")
    started = time.monotonic()
    print(t(f"正在准备演示：县级服务器、组织、三台笔记本的登记和同步（{store_dir}）…",
            f"Preparing the demo: the county server, organizations, three laptops enrolling and "
            f"syncing ({store_dir})…"), flush=True)
    server = CountyServer(files.db, files.log)
    with _stop_on_signals():
        try:
            summary = _build(files, server, args.members, dt.date.today())
            took = time.monotonic() - started
            print(t(f"演示已就绪（用时 {took:.1f} 秒；县级服务器 {server.url}）",
                    f"The demo is ready ({took:.1f} s; county server at {server.url})"))
            if interface is None:
                _print_summary(summary)
                print(t(f"演示口令：{DEMO_PASSPHRASE}", f"Demo passphrase: {DEMO_PASSPHRASE}"))
                if interactive:
                    print(t(f"终端界面无法加载（{missing}）；可用命令行查看演示存储：",
                            f"The interface could not be loaded ({missing}); explore the demo "
                            "store with the command line:"))
                    print(f"  LIUDONG_STORE={store_dir} LIUDONG_PASSPHRASE={DEMO_PASSPHRASE} "
                          "liudong member list")
                return 0
            print(t(f"演示口令：{DEMO_PASSPHRASE}（锁定后用它解锁）",
                    f"Demo passphrase: {DEMO_PASSPHRASE} (to unlock after locking)"), flush=True)
            os.environ["LIUDONG_PASSPHRASE"] = DEMO_PASSPHRASE
            code = int(interface(store_dir, lang=args.lang))
        finally:
            server.stop()
    print(t("再次运行：./dev demo（或 liudong demo）；演示数据每次重新生成",
            "To run it again: ./dev demo (or liudong demo); the demo data is made afresh"))
    return code


# -- building the demo ------------------------------------------------------------------------

def _county(engine: Any, today: dt.date) -> Orgs:
    """The county's organizations and tasks, as ``liudong admin org add`` and ``task send``
    make them (the same functions, on the database the running server uses)."""
    from sync.server.admin import add_org, send_task

    county = add_org(engine, {"name": "光山县委", "kind": "county", "division_code": REGION,
                              "secretary": "县委组织部"})
    ids: dict[str, str] = {"光山县委": county}
    for town, code, branches in (
            ("城关镇党委", "411522100", ["城关村党支部", "东关村党支部", "西关村党支部",
                                      "南街社区党支部"]),
            ("十里镇党委", "411522101", ["十里村党支部", "王湾村党支部"])):
        ids[town] = add_org(engine, {"name": town, "kind": "committee", "parent_id": county,
                                     "division_code": code, "can_approve_probationary": True})
        for name in branches:
            ids[name] = add_org(engine, {"name": name, "kind": "branch", "parent_id": ids[town],
                                         "secretary": "李建国" if name == "城关村党支部" else None})
    # M-4.1: set up with the county committee's approval
    ids["光山县流动党员党委"] = add_org(engine, {
        "name": "光山县流动党员党委", "kind": "mobile_branch", "parent_id": county,
        "approved_by_org_id": county,
        "approved_on": (today - dt.timedelta(days=400)).isoformat()})
    branches = [ids["城关村党支部"], ids["东关村党支部"], ids["西关村党支部"]]
    send_task(engine, {"issued_by_org_id": county, "target_org_ids": branches,
                       "title": "开展流动党员集中排查，核实失联党员情况",
                       "body": "请各支部逐一联系本支部流动党员，更新联系记录，失联党员于期限前报镇党委。",
                       "due_on": (today + dt.timedelta(days=12)).isoformat()})
    send_task(engine, {"issued_by_org_id": ids["城关镇党委"], "target_org_ids": branches[:2],
                       "title": "落实流动党员双向管理责任清单",
                       "due_on": (today - dt.timedelta(days=5)).isoformat()})
    send_task(engine, {"issued_by_org_id": county, "target_org_ids": branches,
                       "title": f"报送{today.year - 1}年度流动党员民主评议结果",
                       "due_on": (today - dt.timedelta(days=15)).isoformat()})
    return Orgs(county=county, town=ids["城关镇党委"], home=ids["城关村党支部"],
                host=ids["东关村党支部"])


def _build(files: Files, server: CountyServer, members: int, today: dt.date,
           ) -> dict[str, Any]:
    from sync.client import Device
    from sync.server import db
    from sync.server.admin import make_enroll_code

    rng = random.Random(2026)
    people = People(rng)
    server.launch()
    stores = []
    try:
        # the laptops' stores are made (a key derivation each) while the server starts
        for path, name in ((files.store, "城关村党支部"), (files.host, "东关村党支部"),
                           (files.town, "城关镇党委")):
            stores.append(Store.create(path, DEMO_PASSPHRASE, kdf=DEMO_KDF,
                                       org={"name": name, "kind": "branch"})[0])
        url = server.wait()
    except BaseException:
        for store in stores:
            store.close()
        raise
    laptops = [Device(store) for store in stores]
    home, host, town = laptops
    try:
        engine = db.make_engine(str(files.db))
        try:
            orgs = _county(engine, today)
            codes = {org: make_enroll_code(engine, org, url, 1)["code"]
                     for org in (orgs.home, orgs.host, orgs.town)}
        finally:
            engine.dispose()
        # The codes go to the laptops in this process: never on a command line.
        for device, org, name in ((home, orgs.home, "城关村党支部办公室电脑"),
                                  (host, orgs.host, "东关村党支部办公室电脑"),
                                  (town, orgs.town, "城关镇党委组织办电脑")):
            device.enroll(codes[org], name=name)
            device.sync()
        story = Story()
        build_home(home.store, orgs, people, members, today, story, rng)
        home.sync()
        build_host(host.store, orgs, people, max(30, members // 4), today, rng)
        host.sync()  # sends its members, brings the demo branch's flows it hosts
        host_records(host.store, story, orgs, today, rng)
        host.sync()
        home.sync()  # brings the other branch's members hosted here and its records
        host_here(home.store, story, orgs, today, rng)
        _ledger_and_letters(home.store, town.store, orgs, today)
        home.sync()
        town.sync()
        # The same fields changed on two laptops before either heard of the other: the town
        # committee first, then the branch, whose sync makes the conflicts. Both also register
        # the same newcomer; the server refuses the second as a duplicate.
        person = newcomer(people, today, orgs)
        edit_for_conflict(town.store, story, today, "town", people)
        town.store.put("member", person)
        town.sync()
        edit_for_conflict(home.store, story, today, "home", people)
        home.store.put("member", {**person, "phone": people.phone()})
        home.sync()
        host.sync()  # the other two laptops see the conflicts too
        town.sync()
        return _summary(home.store, today)
    finally:
        for device in laptops:
            device.close()
            device.store.close()


def _ledger_and_letters(home: Store, town: Store, orgs: Orgs, today: dt.date) -> None:
    """The dues ledger (M-5.3): the town allocates to the branch, the branch spends; and the
    a transfer of membership drafted (M-1.4; demo_data.py makes the issued and received ones). Made before the town's first sync of them, so both laptops' writes travel."""
    from store.workflows import draft_transfer

    def day(n: int) -> str:
        return (today - dt.timedelta(days=n)).isoformat()

    with town.batch(today) as b:
        for purpose, amount in (("education", 3000), ("activities", 2000), ("condolence", 1500)):
            b.put("fund", {"org_id": orgs.home, "on": day(300), "kind": "allocation",
                           "purpose": purpose, "amount_yuan": amount,
                           "note": "党费返还：流动党员教育管理专项"})
    with home.batch(today) as b:
        for on, purpose, amount, note in ((250, "education", 860, "流动党员网上学习平台流量补贴"),
                                          (120, "activities", 1240, "返乡流动党员座谈会"),
                                          (60, "condolence", 600, "走访慰问困难流动党员 3 人")):
            b.put("fund", {"org_id": orgs.home, "on": day(on), "kind": "expense",
                           "purpose": purpose, "amount_yuan": amount, "note": note})
    settled = [m for m in home.live("member") if not home.state.open_flow_of(m["id"])
               and not m.get("archived") and m.get("home_org_id") == orgs.home]
    if settled:  # moving to the host branch for good: a draft, its letter not yet issued
        draft_transfer(home, settled[-1]["id"], {"to_org_id": orgs.host})


# -- the summary --------------------------------------------------------------------------------

def _summary(store: Store, today: dt.date) -> dict[str, Any]:
    from store.register import member_mobility

    members = [m for m in store.live("member") if not m.get("archived")]
    flows = list(store.live("flow"))
    return {
        "members": len(members),
        "mobility": dict(Counter(member_mobility(store, m) for m in members)),
        "flows": dict(Counter(f["status"] for f in flows)),
        "ended": dict(Counter(f.get("end_reason") for f in flows if f["status"] == "ended")),
        "worklist": _worklist(store, today),
        "meetings": sum(1 for _ in store.live("meeting")),
        "contacts": sum(1 for _ in store.live("contact")),
        "conflicts": sum(1 for c in store.live("conflict") if c["status"] == "open"),
        "rejected": len(store.meta.get("rejected", [])),
    }


def _worklist(store: Store, today: dt.date) -> list[tuple[str, str, int]]:
    """The worklist's groups as the interface shows them: (Chinese title, English, count)."""
    try:
        from store.rules import KINDS, counts, worklist
    except ImportError:  # a version without the worklist rules
        return []
    return [(KINDS[kind][0], KINDS[kind][1], n)
            for kind, n in counts(worklist(store, today)).items()]


def _print_summary(s: dict[str, Any]) -> None:
    mob, flows, ended = s["mobility"], s["flows"], s["ended"]
    print(t(f"  党员 {s['members']} 名：本地 {mob.get('none', 0)}，流出 {mob.get('outflow', 0)}，"
            f"流入 {mob.get('inflow', 0)}",
            f"  {s['members']} members: {mob.get('none', 0)} at home, "
            f"{mob.get('outflow', 0)} away (outflow), {mob.get('inflow', 0)} hosted (inflow)"))
    print(t(f"  流动登记：待报到 {flows.get('pending_report', 0)}，已报到 {flows.get('reported', 0)}，"
            f"已结束 {flows.get('ended', 0)}（返回 {ended.get('returned', 0)}，转移组织关系 "
            f"{ended.get('transferred', 0)}，其他 {ended.get('other', 0)}）",
            f"  flows: {flows.get('pending_report', 0)} pending report, "
            f"{flows.get('reported', 0)} reported, {flows.get('ended', 0)} ended "
            f"({ended.get('returned', 0)} returned, {ended.get('transferred', 0)} transferred, "
            f"{ended.get('other', 0)} other)"))
    print(t(f"  联系记录 {s['contacts']} 条，组织生活 {s['meetings']} 次",
            f"  {s['contacts']} contacts, {s['meetings']} meetings"))
    if s["worklist"]:
        print(t("  待办：" + "，".join(f"{zh} {n}" for zh, _, n in s["worklist"]),
                "  worklist: " + ", ".join(f"{en} {n}" for _, en, n in s["worklist"])))
    print(t(f"  同步冲突 {s['conflicts']} 个待处理，被县级服务器拒绝的修改 {s['rejected']} 项",
            f"  {s['conflicts']} open sync conflicts, {s['rejected']} write(s) the county "
            "server refused"))
