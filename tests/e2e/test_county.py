"""The issue's end-to-end story with real processes: `liudong serve` on loopback (SQLite and
PostgreSQL), `liudong admin` setting up the county, branch laptops enrolling by code and
syncing through the command line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from store import TEST_KDF, Store
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import ROOT, Server, command

DAYS = {"left": "2026-11-01", "reported": "2026-11-05", "ended": "2026-11-20"}


def run(*args: str, store: Path | None = None, db: str | None = None,
        check: bool = True, lang: str = "en", env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    env.update(LIUDONG_PASSPHRASE=PASSPHRASE, LIUDONG_LANG=lang, **extra)
    if store is not None:
        env["LIUDONG_STORE"] = str(store)
    if db is not None:
        env["LIUDONG_DB"] = db
    result = subprocess.run([*command(), *args], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=180, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def laptop(tmp_path: Path, name: str) -> Path:
    """A branch laptop's store (light KDF parameters, so the many commands below stay quick;
    `liudong init` with real ones is covered in tests/cli)."""
    path = tmp_path / name
    store, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF, org={"name": "本支部", "kind": "branch"})
    store.close()
    return path


def test_two_branches_and_the_county_share_one_record(server: Server, tmp_path: Path) -> None:
    db = server.db_url
    county = as_json(run("admin", "org", "add", "--name", "光山县委", "--kind", "county",
                         "--division-code", "411522", "--json", db=db))["id"]
    run("admin", "org", "add", "--name", "城关镇党委", "--kind", "committee", "--parent",
        "光山县委", db=db)
    branch_a = as_json(run("admin", "org", "add", "--name", "城关村党支部", "--kind", "branch",
                           "--parent", "城关镇党委", "--json", db=db))["id"]
    branch_b = as_json(run("admin", "org", "add", "--name", "东关村党支部", "--kind", "branch",
                           "--parent", "城关镇党委", "--json", db=db))["id"]
    tree = run("admin", "org", "list", db=db).stdout
    assert tree.index("光山县委") < tree.index("城关镇党委") < tree.index("城关村党支部")

    stores = {name: laptop(tmp_path, name) for name in ("a", "b", "county")}
    # work done offline before enrollment goes up with the first sync
    run("member", "add", "--name", "张三", "--phone", "13800138000", store=stores["a"])
    for name, org in (("a", branch_a), ("b", branch_b), ("county", county)):
        code = as_json(run("admin", "enroll-code", "--org", org, "--server-url", server.url,
                           "--json", db=db))["code"]
        out = run("enroll", "--code", code, store=stores[name]).stdout
        assert "Enrolled" in out and "First sync done" in out
    devices = as_json(run("admin", "device", "list", "--json", db=db))
    assert len(devices) == 3 and {d["status"] for d in devices} == {"active"}

    # A registers the outflow with B as host, naming B as people do (the laptop received the
    # county's organizations when it enrolled); it reaches B, where it is an inflow
    orgs = run("org", "list", store=stores["a"]).stdout
    assert "东关村党支部" in orgs and "城关村党支部（branch） *" in orgs
    run("flow", "out", "zs", "--left-on", DAYS["left"], "--reason", "务工", "--host-org-id",
        "东关村", "--destination-address", "东关村", store=stores["a"])
    assert as_json(run("member", "list", "--json", store=stores["a"]))[0]["mobility"] == "outflow"
    assert "sent 1 op(s)" in run("sync", store=stores["a"]).stdout
    assert as_json(run("member", "list", "--json", store=stores["b"])) == []
    run("sync", store=stores["b"])
    hosted = as_json(run("member", "list", "--json", store=stores["b"]))
    assert [m["name"] for m in hosted] == ["张三"] and hosted[0]["mobility"] == "inflow"
    assert as_json(run("member", "list", "--mobility", "流入", "--json",
                       store=stores["b"])) == hosted
    # the host may not change the member's core fields: refused as it is typed, exit 2
    refused = run("member", "edit", "zs", "--phone", "13900139000", store=stores["b"],
                  check=False)
    assert refused.returncode == 2 and "phone" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # B records the report-in; A sees it
    run("flow", "report", "zs", "--on", DAYS["reported"], store=stores["b"])
    run("sync", store=stores["b"])
    run("sync", store=stores["a"])
    flow = as_json(run("member", "show", "zs", "--json", store=stores["a"]))["flows"][0]
    assert flow["status"] == "reported" and flow["reported_on"] == DAYS["reported"]

    # the county sees everything below it
    run("sync", store=stores["county"])
    assert [m["name"] for m in as_json(run("member", "list", "--json",
                                           store=stores["county"]))] == ["张三"]
    stats = {r["name"]: r for r in as_json(run("admin", "stats", "--json", db=db))}
    assert stats["光山县委"]["members"] == 1 and stats["东关村党支部"]["hosted"] == 1
    assert stats["城关村党支部"]["outflow"] == 1 and stats["东关村党支部"]["outflow"] == 0
    assert stats["光山县委"]["devices"] == 3
    assert stats["东关村党支部"]["inflow"] == 1 and stats["城关村党支部"]["reported_rate"] == 1.0
    # the table, Chinese headings by default; --org: that organization and those below it
    table = run("admin", "stats", db=db, lang="zh").stdout.splitlines()
    assert table[0].split()[:6] == ["组织", "党员", "流出", "流入", "待报到", "报到率"]
    assert "参会率" in table[0] and "经费" in table[0] and "最近同步" in table[0]
    assert table[2].split()[:3] == ["光山县委", "1", "1"]
    town = as_json(run("admin", "stats", "--org", "城关镇党委", "--json", db=db))
    assert [r["name"] for r in town] == ["城关镇党委", "城关村党支部", "东关村党支部"]

    # A ends the flow; the member leaves B's store
    run("flow", "end", "zs", "--on", DAYS["ended"], "--reason", "返回", store=stores["a"])
    run("sync", store=stores["a"])
    assert "removed 2" in run("sync", store=stores["b"]).stdout
    assert as_json(run("member", "list", "--all", "--json", store=stores["b"])) == []
    assert as_json(run("member", "show", "zs", "--json",
                       store=stores["a"]))["member"]["mobility"] == "none"

    # the county dispatches a task; B sees it after a sync
    run("admin", "task", "send", "--from", "光山县委", "--to", "东关村党支部", "--title",
        "核查流动党员", "--due", "2026-12-31", db=db)
    run("sync", store=stores["b"])
    with Store.open(stores["b"], PASSPHRASE) as s:
        assert [t["title"] for t in s.live("task")] == ["核查流动党员"]

    # a consistent backup while the server runs
    backup = tmp_path / "county.bak"
    assert "Backed up" in run("admin", "backup", "--out", str(backup), db=db,
                              env={"LIUDONG_BACKUP_PASSPHRASE": "county backup passphrase"}).stdout
    assert backup.stat().st_size > 0

    # the county revokes B's laptop: refused, and its keys are erased
    device_b = next(d["device_id"] for d in devices if d["org_name"] == "东关村党支部")
    run("admin", "device", "revoke", device_b, db=db)
    refused = run("sync", store=stores["b"], check=False)
    assert refused.returncode != 0 and "revoked" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert run("member", "list", store=stores["b"], check=False).returncode != 0

    # the server goes away: a clear message and a non-zero exit, nothing lost
    server.stop()
    run("member", "add", "--name", "李四", store=stores["a"])
    offline = run("sync", store=stores["a"], check=False)
    assert offline.returncode != 0 and "cannot reach the county server" in offline.stderr
    assert len(offline.stderr.strip().splitlines()) == 1
    restarted = Server(db, tmp_path, port=server.port)
    try:
        assert "sent 1 op(s)" in run("sync", store=stores["a"]).stdout
        run("sync", store=stores["county"])
        names = {m["name"] for m in as_json(run("member", "list", "--json",
                                                store=stores["county"]))}
        assert names == {"张三", "李四"}
    finally:
        restarted.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_expired_and_used_codes_are_refused_clearly(server: Server, tmp_path: Path) -> None:
    db = server.db_url
    org = as_json(run("admin", "org", "add", "--name", "城关村党支部", "--kind", "branch",
                      "--json", db=db))["id"]
    made = as_json(run("admin", "enroll-code", "--org", org, "--server-url", server.url,
                       "--hours", "0.00001", "--json", db=db))
    late = run("enroll", "--code", made["code"], store=laptop(tmp_path, "late"), check=False)
    assert late.returncode != 0 and "expired" in late.stderr
    made = as_json(run("admin", "enroll-code", "--org", org, "--server-url", server.url,
                       "--json", db=db))
    # a bare token (as codes were before answers were signed) carries no server key: refused
    bare = run("enroll", "--server", server.url, "--code", made["token"],
               store=laptop(tmp_path, "bare"), check=False)
    assert bare.returncode == 7 and "older version" in bare.stderr
    run("enroll", "--server", server.url, "--code", made["code"], store=laptop(tmp_path, "x"))
    again = run("enroll", "--code", made["code"], store=laptop(tmp_path, "y"), check=False)
    assert again.returncode != 0 and "used already" in again.stderr
    bad = run("admin", "enroll-code", "--org", "没有这个组织", db=db, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
