"""Benchmark of the worklist and the checklists (DESIGN §2.3, §7) on a large register.

    python bench/bench_rules.py            # 20,000 members, 5,000 open flows
    python bench/bench_rules.py --quick    # 2,000 members, 500 open flows

The register is a township committee with 40 branches: its members, their flows (open, ended,
pending report), contacts, a year of monthly meetings with attendance, appraisals, probation,
transfers, study, care, vanguard roles and county tasks, plus members of other places hosted
here. Figures, median and best of several runs in one process, each run of the rules
followed by a run of the anchor so that other load on the machine hits both alike:

1. ``worklist`` for the committee after a commit of one contact (not timed) before each run:
   what the worklist screen pays when the store changed (target: 50 ms at 20,000 members);
2. ``worklist`` again with no commit in between: kept per revision of the state (the county
   statistics and the worklist screen looking at one state);
3. the worklist worked out from nothing (``fresh_worklist``): what the first look after opening
   the store pays, or one after the day, the settings or an organization changed;
4. ``checklist`` of one member on an open flow (the member page), and ``checklists`` for 100;
5. the anchor: a plain Python scan of the same records that touches every member and every
   flow once (what any rule over the register must at least do), and the ratio to it.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store import TEST_KDF, Store
from store.checklists import checklists
from store.rules import Thresholds, add_months, counts, fresh_worklist, worklist

PASSPHRASE = "correct horse battery"
SEED = 20260615
TODAY = dt.date.today()
BATCH = 2_000  # records per commit while building
BRANCHES = 40
TARGET_MS = 50.0


@dataclass(frozen=True)
class Sizes:
    members: int
    open_flows: int
    inflow: int
    reps: int


FULL = Sizes(members=20_000, open_flows=5_000, inflow=500, reps=21)
QUICK = Sizes(members=2_000, open_flows=500, inflow=50, reps=21)


def day(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


class Builder:
    """Puts records through the store's own validation, ``BATCH`` to a commit."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.made: list[str] = []

    def put(self, type_name: str, values: dict[str, Any]) -> None:
        self.pending.append((type_name, values))
        if len(self.pending) >= BATCH:
            self._commit()

    def now(self, type_name: str, values: dict[str, Any]) -> str:
        self.put(type_name, values)
        return self.flush()[-1]

    def flush(self) -> list[str]:
        """Commit what is pending; returns the ids made since the last flush."""
        self._commit()
        made, self.made = self.made, []
        return made

    def _commit(self) -> None:
        if self.pending:
            with self.store.batch() as b:
                self.made += [b.put(t, v) for t, v in self.pending]
            self.pending = []


def build(path: Path, sizes: Sizes, rng: random.Random) -> tuple[Store, list[str]]:
    """The register; returns the store (own organization set) and the members on open flows."""
    store, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF)
    b = Builder(store)
    county = b.now("org", {"name": "光山县委", "kind": "county"})
    town = b.now("org", {"name": "城关镇党委", "kind": "committee", "parent_id": county})
    other = b.now("org", {"name": "南山区科技园党委", "kind": "committee", "parent_id": county})
    for i in range(BRANCHES):
        b.put("org", {"name": f"第{i + 1}村党支部", "kind": "branch", "parent_id": town})
    for i in range(10):
        b.put("org", {"name": f"科技园第{i + 1}支部", "kind": "branch", "parent_id": other})
    orgs = b.flush()
    branches, hosts = orgs[:BRANCHES], orgs[BRANCHES:]

    for i in range(sizes.members):
        values: dict[str, Any] = {"name": f"党员{i:05d}", "home_org_id": branches[i % BRANCHES],
                                  "standing": "full", "joined_on": day(rng.randrange(400, 9000))}
        if rng.random() < 0.02:
            values.update(standing="probationary", joined_on=day(rng.randrange(300, 400)))
            values["probation_ends_on"] = (dt.date.fromisoformat(values["joined_on"])
                                           + dt.timedelta(days=365)).isoformat()
        b.put("member", values)
    members = b.flush()
    for i in range(sizes.inflow):
        b.put("member", {"name": f"流入{i:04d}", "external_home_org": "安徽省六安市某村党支部",
                         "standing": "full", "joined_on": day(rng.randrange(400, 9000))})
    inflow = b.flush()

    mobile = rng.sample(members, sizes.open_flows)
    mobile_set = set(mobile)
    for n, member_id in enumerate(mobile):
        left = rng.randrange(10, 1100)
        flow: dict[str, Any] = {"member_id": member_id, "reason": rng.choice(
            ("work", "work", "work", "study", "study_abroad", "residence")),
            "left_on": day(left), "status": "pending_report"}
        if rng.random() < 0.6:
            flow["host_org_id"] = rng.choice(hosts)
        elif rng.random() < 0.8:
            flow["external_host"] = "广东省深圳市某党委"
        if rng.random() < 0.95:
            flow["home_contact"] = "李书记"
        if rng.random() < 0.9:
            flow.update(status="reported", reported_on=day(max(0, left - rng.randrange(1, 60))))
        b.put("flow", flow)
        # most are called about every quarter (the last few calls kept); some are neglected
        if rng.random() < 0.85:
            ago = rng.randrange(0, 80)
            for _ in range(4):
                if ago > left:
                    break
                b.put("contact", {"member_id": member_id, "on": day(ago), "channel": "phone",
                                  "reached": rng.random() < 0.85})
                ago += rng.randrange(40, 100)
        else:
            for _ in range(rng.randrange(0, 3)):
                b.put("contact", {"member_id": member_id, "on": day(rng.randrange(0, left + 1)),
                                  "channel": "phone", "reached": rng.random() < 0.5})
        if rng.random() < 0.85:
            b.put("appraisal", {"member_id": member_id, "year": TODAY.year - 1,
                                "by_org_id": flow.get("host_org_id") or town,
                                "result": "qualified"})
        if n % 3 == 0:
            b.put("study", {"member_id": member_id, "on": day(rng.randrange(0, 500)),
                            "kind": rng.choice(("online", "campaign", "lesson"))})
        if n % 7 == 0:
            b.put("vanguard", {"member_id": member_id, "kind": "volunteer", "title": "志愿服务",
                               "started_on": day(rng.randrange(0, 700))})
    # members who came back: ended flows
    for member_id in rng.sample([m for m in members if m not in mobile_set],
                                sizes.open_flows // 5):
        b.put("flow", {"member_id": member_id, "reason": "work", "left_on": day(900),
                       "status": "ended", "ended_on": day(500), "end_reason": "returned"})
    for n, member_id in enumerate(inflow):
        b.put("flow", {"member_id": member_id, "reason": "work", "left_on": day(400),
                       "host_org_id": branches[n % BRANCHES], "status": "reported",
                       "reported_on": day(390), "host_contact": "王委员"})
        b.put("care", {"member_id": member_id, "on": day(rng.randrange(0, 400)),
                       "kind": "employment", "by_org_id": branches[n % BRANCHES]})
    home_of = {m: branches[n % BRANCHES] for n, m in enumerate(members)}
    for n, member_id in enumerate(rng.sample(members, sizes.members // 100)):
        issued = day(rng.randrange(5, 90))
        b.put("transfer", {"member_id": member_id, "from_org_id": home_of[member_id],
                           "to_org_text": "外县某党支部", "letter_no": f"光组转字{n + 1:04d}号",
                           "dues_paid_until": issued[:7], "valid_days": 30, "issued_on": issued,
                           "receipt_due_on": add_months(dt.date.fromisoformat(issued),
                                                        1).isoformat(),
                           "status": "issued"})
    b.flush()

    # a year of monthly meetings in every branch; 2% of members drifted away 8 months ago
    drifted = set(rng.sample([m for m in members if m not in mobile_set], sizes.members // 50))
    by_branch: dict[str, list[str]] = {}
    for n, member_id in enumerate(members):
        if member_id not in mobile_set:
            by_branch.setdefault(branches[n % BRANCHES], []).append(member_id)
    for n, member_id in enumerate(inflow):
        by_branch.setdefault(branches[n % BRANCHES], []).append(member_id)
    for branch, people in by_branch.items():
        for month in range(13):
            held = day(month * 30 + 5)
            attendees = [m for m in people if rng.random() < 0.75
                         and not (m in drifted and month < 8)]
            b.put("meeting", {"org_id": branch, "kind": "theme_day", "held_on": held,
                              "attendee_ids": attendees})
    for i in range(20):
        b.put("task", {"issued_by_org_id": county, "title": f"调度任务{i + 1}",
                       "target_org_ids": rng.sample(branches, 10), "due_on": day(-10 + i)})
    b.flush()
    store.set_meta(own_org_id=town)
    return store, mobile


def anchor_scan(store: Store) -> int:
    """Every member and every flow touched once, with a field or two read: the floor."""
    subtree = store.state.own_subtree()
    n = 0
    for m in store.live("member"):
        if m.get("home_org_id") in subtree and not m.get("archived"):
            n += 1
    for f in store.live("flow"):
        if f.get("status") != "ended" and f.get("left_on", "") < TODAY.isoformat():
            n += 1
    return n


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU of this thread) in ms: on a shared machine the CPU time shows what other
    load added to the wall time."""
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - start) * 1e3, (time.thread_time() - cpu) * 1e3


@dataclass
class Figures:
    ours: list[float]
    anchor: list[float]
    cpu: list[float]

    def line(self, what: str) -> str:
        return (f"  {what:<30} median {statistics.median(self.ours):8.2f} ms, "
                f"best {min(self.ours):8.2f} ms (CPU median {statistics.median(self.cpu):.2f} ms)")


def measure(fn: Callable[[], object], anchor: Callable[[], object], reps: int,
            before: Callable[[], object] = lambda: None) -> tuple[Figures, Figures]:
    """``fn`` and the anchor, interleaved so that other load on the machine hits both alike;
    ``before`` runs (not timed) before each run of ``fn``."""
    fn()
    anchor()  # warm up
    ours, base, cpu, base_cpu = [], [], [], []
    for _ in range(reps):
        before()
        wall, used = timed(fn)
        ours.append(wall)
        cpu.append(used)
        wall, used = timed(anchor)
        base.append(wall)
        base_cpu.append(used)
    return Figures(ours, base, cpu), Figures(base, [], base_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 members")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to put the store (default: a temporary directory)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    rng = random.Random(SEED)
    print(f"liudong rules benchmark: {sizes.members:,} members, {sizes.open_flows:,} open "
          f"flows, {sizes.inflow:,} hosted here, seed {SEED}")
    with tempfile.TemporaryDirectory(prefix="liudong-bench-", dir=args.dir) as tmp:
        start = time.perf_counter()
        store, mobile = build(Path(tmp) / "store", sizes, rng)
        with store:
            sizes_line = ", ".join(f"{sum(1 for _ in store.live(t)):,} {t}" for t in (
                "member", "flow", "contact", "meeting", "appraisal", "transfer", "task"))
            print(f"  built in {time.perf_counter() - start:.1f} s: {sizes_line}")
            items = worklist(store)
            print(f"  worklist: {len(items):,} items: "
                  + ", ".join(f"{k} {v}" for k, v in counts(items).items()))
            sample = rng.sample(mobile, 100)
            called = iter(rng.sample(mobile, sizes.reps + 1))

            def call() -> None:  # the commonest edit: a contact logged
                store.put("contact", {"member_id": next(called), "on": day(0),
                                      "channel": "phone", "reached": True})

            scan = lambda: anchor_scan(store)  # noqa: E731
            work, base = measure(lambda: worklist(store), scan, sizes.reps, before=call)
            again, _ = measure(lambda: worklist(store), scan, sizes.reps)
            fresh, _ = measure(lambda: fresh_worklist(store.state, TODAY, Thresholds()), scan,
                               sizes.reps)
            one, _ = measure(lambda: checklists(store, sample[:1]), scan, sizes.reps)
            check, _ = measure(lambda: checklists(store, sample), scan, sizes.reps)
    ratios = [o / a for o, a in zip(work.ours, work.anchor, strict=True)]
    checks = [o / a for o, a in zip(check.ours, check.anchor, strict=True)]
    fresh_ratios = [o / a for o, a in zip(fresh.ours, fresh.anchor, strict=True)]
    ok = statistics.median(work.ours) <= TARGET_MS and \
        statistics.median(check.ours) <= TARGET_MS
    print()
    print(work.line("worklist after a commit") +
          f"   target ≤ {TARGET_MS:.0f} ms {'ok' if ok else 'MISSED'}")
    print(again.line("worklist, same revision"))
    print(fresh.line("worklist from nothing"))
    print(one.line("checklist, 1 member"))
    print(check.line("checklists, 100 members"))
    print(base.line("anchor: scan members + flows"))
    print(f"  {'ratio worklist / anchor':<30} median {statistics.median(ratios):8.2f}×, "
          f"best {min(ratios):8.2f}× (per interleaved pair)")
    print(f"  {'ratio from nothing / anchor':<30} median "
          f"{statistics.median(fresh_ratios):8.2f}×, best {min(fresh_ratios):8.2f}×")
    print(f"  {'ratio checklists·100 / anchor':<30} median {statistics.median(checks):8.2f}×, "
          f"best {min(checks):8.2f}×")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
