"""`liudong demo --no-interface` as a user runs it, in an empty directory: a real county server
as a child process, three laptops enrolling and syncing, and a demo store with every kind of
record the interface shows — and afterwards no server left running."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from store import Store
from store.register import member_mobility
from tests.e2e.conftest import command
from tui.demo import DEMO_PASSPHRASE

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention ``text`` (Linux: /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def test_the_demo_builds_a_county_with_conflicts_and_leaves_no_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    env["LIUDONG_LANG"] = "en"
    started = time.monotonic()
    result = subprocess.run([*command(), "demo", "--no-interface", "--members", "120"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
                            stdin=subprocess.DEVNULL)
    took = time.monotonic() - started
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert f"Demo passphrase: {DEMO_PASSPHRASE}" in out
    assert re.search(r"[1-9]\d* open sync conflicts, [1-9]\d* write\(s\) the county server "
                     r"refused", out), out
    assert took < 60, f"the demo took {took:.1f} s"

    # the server is gone: its port is closed and no process holds the demo's files
    port = int(re.search(r"https://127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    if Path("/proc/self").exists():
        assert _processes_mentioning(str(tmp_path)) == []

    files = {p.name for p in tmp_path.iterdir()}
    assert {"demo-store", "demo-store-b", "demo-store-town", "demo-store-county.db"} <= files
    with Store.open(tmp_path / "demo-store", DEMO_PASSPHRASE) as store:
        assert store.meta.get("server_url", "").startswith("https://127.0.0.1:")
        assert store.state.pending_count() == 0  # everything it wrote reached the county
        flows = list(store.live("flow"))
        status = Counter(f["status"] for f in flows)
        assert status["pending_report"] and status["reported"] and status["ended"]
        assert {f.get("end_reason") for f in flows if f["status"] == "ended"} == {
            "returned", "transferred", "other"}
        today = dt.date.today()
        assert any(f["status"] == "pending_report"
                   and (today - dt.date.fromisoformat(f["left_on"])).days > 30 for f in flows)

        members = list(store.live("member"))
        inflow = [m for m in members if member_mobility(store, m) == "inflow"]
        assert any(m.get("external_home_org") for m in inflow)  # from outside the system
        assert any(m.get("home_org_id") for m in inflow)  # from the other branch
        assert any(member_mobility(store, m) == "outflow" for m in members)
        assert len([m for m in members if m.get("home_org_id") == store.meta["own_org_id"]
                    ]) >= 120

        meetings = list(store.live("meeting"))
        inflow_ids = {m["id"] for m in inflow}
        assert len(meetings) >= 12
        assert any(inflow_ids & set(m.get("attendee_ids") or []) for m in meetings)
        # a meeting of the other branch, attended by one of ours it hosts, counts here too
        assert any(m["org_id"] != store.meta["own_org_id"] for m in meetings)

        conflicts = [c for c in store.live("conflict") if c["status"] == "open"]
        assert {c["subject_type"] for c in conflicts} == {"member", "flow"}
        assert all(len(c["values"]) == 2 for c in conflicts)
        assert [r["reason"] for r in store.meta.get("rejected", [])] == ["duplicate"]

        for type_name in ("contact", "study", "care", "appraisal", "vanguard", "commendation",
                          "probation_review", "transfer", "application", "fund", "task",
                          "task_reply"):
            assert any(True for _ in store.live(type_name)), type_name
        from store.rules import KINDS, counts, worklist

        found = counts(worklist(store))
        assert set(found) == set(KINDS), set(KINDS) - set(found)
        flow_conflict = next(c for c in conflicts if c["subject_type"] == "flow")
        member = store.get(store.get(flow_conflict["subject_id"])["member_id"])

    # the command line names a flow's conflict by its member and the field by its label
    listed = subprocess.run([*command(), "--store", str(tmp_path / "demo-store"), "conflict",
                             "list"], capture_output=True, text=True, timeout=60,
                            env={**env, "LIUDONG_PASSPHRASE": DEMO_PASSPHRASE})
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith(flow_conflict["id"]))
    assert f"{member['name']} · flow" in line and "employer" in line, line
