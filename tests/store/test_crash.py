"""Crash safety (DESIGN §2.4, §7): a child commits and reports each acknowledgement; the parent
kills it with SIGKILL at random moments, reopens, and checks every acknowledged write is there.

CI runs 100 kills; ``pytest --kills 500`` runs more.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import Store
from tests.conftest import PASSPHRASE, create_store

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]


def run_child_until_killed(path: Path, seed: int, rng: random.Random,
                           *extra: str) -> list[list[str]]:
    """Start a child, let it acknowledge a random number of commits, kill it at a random
    moment; returns the protocol lines it wrote."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, str(CHILD), str(path), PASSPHRASE, str(seed),
                              *extra], stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
    assert child.stdout is not None
    acks_wanted = rng.randint(0, 25)
    acks = 0
    lines: list[list[str]] = []
    deadline = time.monotonic() + 30
    while acks < acks_wanted and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line.split())
        acks += line.startswith("A")
    time.sleep(rng.random() * 0.004)  # land somewhere inside the next commit
    child.send_signal(signal.SIGKILL)
    # read through the same buffered reader: communicate() would bypass what it read ahead
    lines += [line.split() for line in child.stdout.read().splitlines() if line]
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"child ended by itself: {child.returncode}"
    return lines


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    kill_and_check(tmp_path, request.config.getoption("--kills"))


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill_during_background_compaction(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Compactions run beside commits and take long here: kills land while a snapshot is being
    sealed, between the new journal's rename and the snapshot's, and while the old generation
    is shredded; every acknowledged commit, including those carried into the new journal,
    survives, and nothing of an unfinished generation is left after the next open."""
    path, mid_compaction = kill_and_check(
        tmp_path, max(20, request.config.getoption("--kills") // 3), "slow")
    assert mid_compaction > 0
    names = {p.name for p in path.iterdir()}
    assert len([n for n in names if n.startswith("snapshot-")]) == 1
    assert len([n for n in names if n.startswith("journal-")]) == 1
    assert not [n for n in names if n.endswith(".tmp")]


def kill_and_check(tmp_path: Path, kills: int, *extra: str) -> tuple[Path, int]:
    path = tmp_path / "store"
    s, _ = create_store(path)
    s.close()
    rng = random.Random(20261128)
    expected: dict[str, str] = {}  # rec_id → acknowledged notes value
    total_acks = in_flight_survived = mid_compaction = 0
    for k in range(kills):
        lines = run_child_until_killed(path, k, rng, *extra)
        pending: tuple[str, str] | None = None  # (rec_id or "-", value) begun, not acknowledged
        for parts in lines:
            if parts[0] == "B":
                pending = (parts[2], parts[3])
            elif parts[0] == "I" and pending:
                pending = (parts[1], pending[1])
            elif parts[0] == "A" and pending:
                if pending[0] != "-":
                    expected[pending[0]] = pending[1]
                total_acks += 1
                pending = None
        names = [p.name for p in path.iterdir()]
        if [n for n in names if n.endswith(".tmp") or n.startswith("journal-")][1:]:
            mid_compaction += 1  # killed inside one: a file of the next generation is there
        with Store.open(path, PASSPHRASE) as store:  # the store always opens
            notes = {m["id"]: m.get("notes") for m in store.live("member")}
            for rec_id, value in expected.items():
                if notes.get(rec_id) != value:
                    # the only allowed difference: the one unacknowledged edit of this record
                    assert pending is not None and pending[0] == rec_id and \
                        notes.get(rec_id) == pending[1], (k, rec_id, value, notes.get(rec_id))
                    expected[rec_id] = pending[1]
                    in_flight_survived += 1
            extra = set(notes) - set(expected)
            assert len(extra) <= 1, f"more than one unacknowledged record appeared: {extra}"
            for rec_id in extra:
                expected[rec_id] = notes[rec_id]  # the in-flight add happened to land
                in_flight_survived += 1
            assert not [f for f in store.doctor() if f.level == "error"]
    assert total_acks > kills  # the children did real work between kills
    print(f"{kills} kills, {total_acks} acknowledged commits, "
          f"{in_flight_survived} unacknowledged commits that landed anyway, "
          f"{mid_compaction} kills inside a compaction")
    return path, mid_compaction
