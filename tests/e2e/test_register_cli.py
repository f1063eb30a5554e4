"""The register from the command line against a real `liudong serve` (DESIGN §5): orgs named
by name, Chinese labels, an edit the other side owns refused as it is typed, what the server
still refuses reported with the member's name and a non-zero exit, and a laptop restored from
its USB backup that loses nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from store import Store
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import Server
from tests.e2e.test_county import as_json, laptop, run

EXIT_REFUSED_WRITES = 11


def county_with_two_branches(server: Server, tmp_path: Path) -> dict[str, Path]:
    db = server.db_url
    run("admin", "org", "add", "--name", "光山县委", "--kind", "county", db=db)
    run("admin", "org", "add", "--name", "城关镇党委", "--kind", "committee", "--parent", "光山",
        db=db)
    for name in ("城关村党支部", "东关村党支部"):
        run("admin", "org", "add", "--name", name, "--kind", "branch", "--parent", "城关镇",
            db=db)
    stores = {}
    for key, org in (("a", "城关村"), ("b", "东关村")):
        stores[key] = laptop(tmp_path, key)
        code = as_json(run("admin", "enroll-code", "--org", org, "--server-url", server.url,
                           "--json", db=db))["code"]
        run("enroll", "--code", code, store=stores[key])
    return stores


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_register_from_the_command_line(server: Server, tmp_path: Path) -> None:
    stores = county_with_two_branches(server, tmp_path)
    a, b = stores["a"], stores["b"]
    run("member", "add", "--name", "张 三", "--id-number", "41152219880512123x",
        "--phone", "13800138000", store=a)
    shown = as_json(run("member", "show", "zs", "--json", store=a))["member"]
    assert (shown["name"], shown["birth_date"], shown["gender"]) == ("张三", "1988-05-12", "male")
    twice = run("member", "add", "--name", "李四", "--id-number", "41152219880512123X", store=a,
                check=False)
    assert twice.returncode == 2 and "张三" in twice.stderr and "id_number" in twice.stderr
    # a flag that names a record type's enum takes the Chinese label, and --help lists them
    assert "返回" in run("flow", "end", "--help", store=a).stdout
    assert "微信" in run("contact", "log", "--help", store=a).stdout
    run("flow", "out", "张三", "--left-on", "2026-11-01", "--reason", "务工", "--host-org-id",
        "东关村", store=a)
    run("contact", "log", "张三", "--on", "2026-11-02", "--channel", "微信", "--reached", "是",
        store=a)
    unknown = run("flow", "out", "张三", "--left-on", "2026-11-01", "--reason", "work",
                  "--host-org-id", "西关村", store=a, check=False)
    assert unknown.returncode == 2 and "host_org_id" in unknown.stderr
    run("sync", store=a)
    run("sync", store=b)
    # b hosts him: it may record the report-in, not change his phone
    run("flow", "report", "张三", "--on", "2026-11-03", store=b)
    typed = run("member", "edit", "张三", "--phone", "13900139000", store=b, check=False,
                lang="zh")
    assert typed.returncode == 2 and "「手机号」由流出地" in typed.stderr
    # a modified client commits it anyway: the server refuses, sync says so and exits 11
    with Store.open(b, PASSPHRASE) as store:
        member_id = next(iter(store.live("member")))["id"]
        store.commit({"k": "local", "ops": [{
            "device_id": store.device_id, "dev_seq": store.meta["dev_seq"] + 1,
            "rec_id": member_id, "type": "member", "set": {"phone": "13900139000"},
            "base": {}, "hlc": store.state.meta["hlc"][:12] + "ffff"}]})
    refused = run("sync", store=b, check=False, lang="zh")
    assert refused.returncode == EXIT_REFUSED_WRITES, refused
    assert "张三" in refused.stderr and "「手机号」" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = run("sync", "--rejected", store=b, lang="zh").stdout
    assert "张三" in listed and "手机号" in listed
    assert run("sync", store=b).returncode == 0  # reported once; the next sync is clean
    run("sync", store=a)
    flow = as_json(run("member", "show", "张三", "--json", store=a))["flows"][0]
    assert flow["reported_on"] == "2026-11-03"
    run("flow", "end", "张三", "--on", "2026-11-20", "--reason", "返回", store=a)
    assert as_json(run("member", "list", "--json", store=a))[0]["mobility"] == "none"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_laptop_restored_from_its_usb_backup_loses_nothing(server: Server,
                                                            tmp_path: Path) -> None:
    stores = county_with_two_branches(server, tmp_path)
    a = stores["a"]
    run("member", "add", "--name", "张三", store=a)
    run("sync", store=a)
    usb = tmp_path / "usb.ldbak"
    run("backup", "--out", str(usb), store=a)
    run("member", "add", "--name", "李四", store=a)
    run("sync", store=a)
    shutil.rmtree(a)  # the laptop is lost; a new one restores the stick
    run("restore", str(usb), store=a)
    run("member", "add", "--name", "王五", store=a)
    synced = run("sync", store=a)
    assert "gone back" in synced.stderr and "nothing was lost" in synced.stderr
    names = sorted(m["name"] for m in as_json(run("member", "list", "--json", store=a)))
    assert names == ["张三", "李四", "王五"]
    stats = {r["name"]: r for r in as_json(run("admin", "stats", "--json", db=server.db_url))}
    assert stats["城关村党支部"]["members"] == 3
    assert json.loads(run("doctor", "--json", store=a).stdout)[-1]["level"] == "ok"
