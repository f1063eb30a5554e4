"""``liudong export``: the ledgers a branch or a town prints and files (DESIGN §5; M-1.2 the
register of mobile members, M-5.1 statistics, M-6 the information system). Each file is read
back as a user's spreadsheet program or script would."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pytest
from openpyxl import load_workbook

from store import TEST_KDF, Store
from store.register import flow_in, flow_out, log_contact
from tests.cli.test_commands import liudong
from tests.cli.test_import import Run, in_process
from tests.conftest import PASSPHRASE, make_id_number
from tui.county_stats import org_stats

TODAY = "2026-11-30"
ZHANG = make_id_number("330106", "19850315", 123)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    return in_process(monkeypatch, capsys)


def make_town(path: Path) -> dict[str, str]:
    """A town committee (the store's own) with branches A and B: 张三 of A is away to B, 李四 of
    A to a host outside the system, 王五 from another province is hosted in B; contacts logged."""
    store, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF)
    with store:
        town = store.put("org", {"name": "城关镇党委", "kind": "committee"})
        a = store.put("org", {"name": "城关村党支部", "kind": "branch", "parent_id": town})
        b = store.put("org", {"name": "东关村党支部", "kind": "branch", "parent_id": town})
        zhang = store.put("member", {"name": "张三", "id_number": ZHANG, "phone": "13800138000",
                                     "home_org_id": a, "standing": "full"})
        li = store.put("member", {"name": "李四", "gender": "female", "home_org_id": a,
                                  "standing": "full"})
        store.put("member", {"name": "赵六", "home_org_id": a, "standing": "full"})
        flow_out(store, zhang, {"left_on": "2026-03-01", "reason": "work", "host_org_id": b,
                                "destination_address": "东关村工业园", "home_contact": "李书记",
                                "reported_on": "2026-03-10", "certificate_no": "ZJ-0001"})
        flow_out(store, li, {"left_on": "2026-09-01", "reason": "study",
                             "external_host": "南山区科技园党委", "destination_address": "广东省深圳市"})
        flow_in(store, {"name": "王五", "external_home_org": "河南省光山县某村党支部"},
                {"left_on": "2026-05-01", "reason": "work", "host_org_id": b,
                 "reported_on": "2026-05-03", "host_contact": "王委员"})
        log_contact(store, zhang, {"on": "2026-11-20", "channel": "wechat", "reached": True,
                                   "by": "李书记", "summary": "=HYPERLINK(\"x\") 在园区工作"})
        log_contact(store, li, {"on": "2026-10-02", "channel": "phone", "reached": False})
        store.set_meta(own_org_id=town)
    return {"town": town, "a": a, "b": b}


def rows_of(ws: object) -> list[list[object]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]  # type: ignore[attr-defined]


def test_xlsx_has_a_printable_sheet_per_ledger_m1_2_m5_1(tmp_path: Path, run: Run) -> None:
    make_town(tmp_path / "s")
    out = tmp_path / "台账.xlsx"
    code, stdout, err = run("export", "--format", "xlsx", "--out", str(out), "--today", TODAY,
                            store=tmp_path / "s")
    assert code == 0, err
    assert "流出党员台账 2 行" in stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # personal data: the owner's alone
    assert [p.name for p in tmp_path.iterdir() if p.name != "s"] == ["台账.xlsx"]  # no temp left
    book = load_workbook(out)
    assert book.sheetnames == ["流出党员台账", "流入党员台账", "联系记录", "流动党员统计"]
    ws = book["流出党员台账"]
    rows = rows_of(ws)
    assert rows[0][0] == f"流出党员台账 · 城关镇党委 · 截至 {TODAY}"
    headings = rows[1]
    assert headings[:6] == ["姓名", "性别", "出生日期", "身份证号", "手机号", "流出地党组织"]
    assert {"流入地党组织", "流入地地址", "流动原因", "外出日期", "报到日期", "流出地联系人",
            "流动党员活动证号", "状态", "最近联系"} <= set(headings)
    by_name = {r[0]: dict(zip(headings, r)) for r in rows[2:]}
    assert set(by_name) == {"张三", "李四"}
    zhang, li = by_name["张三"], by_name["李四"]
    assert (zhang["性别"], zhang["身份证号"], zhang["流入地党组织"], zhang["流动原因"],
            zhang["状态"], zhang["最近联系"], zhang["流动党员活动证号"]) == (
        "男", ZHANG, "东关村党支部", "务工经商", "已报到", "2026-11-20", "ZJ-0001")
    assert (li["流入地党组织"], li["状态"], li["流动原因"]) == ("南山区科技园党委", "待报到", "学习")
    # ready to print: bold headings, frozen and repeated on every page, landscape A4 to width
    assert ws.cell(2, 1).font.b and ws.freeze_panes == "A3"
    assert ws.print_title_rows == "$1:$2"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9  # A4
    assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.column_dimensions["D"].width >= 18 + 2  # an ID number fits
    inflow = rows_of(book["流入党员台账"])
    assert sorted(r[0] for r in inflow[2:]) == ["张三", "王五"]
    wang = dict(zip(inflow[1], next(r for r in inflow[2:] if r[0] == "王五")))
    assert wang["流出地党组织"] == "河南省光山县某村党支部" and wang["流入地联系人"] == "王委员"
    contacts = rows_of(book["联系记录"])
    assert contacts[1] == ["姓名", "日期", "联系人", "方式", "已联系上", "情况"]
    assert contacts[2][:5] == ["李四", "2026-10-02", None, "电话", "否"]
    assert contacts[3][5] == "=HYPERLINK(\"x\") 在园区工作"  # kept as text, not a formula
    assert book["联系记录"].cell(4, 6).data_type == "s"


def test_statistics_sheet_matches_org_stats_m5_1(tmp_path: Path, run: Run) -> None:
    import datetime as dt

    make_town(tmp_path / "s")
    out = tmp_path / "stats.xlsx"
    code, _, err = run("export", "--out", str(out), "--what", "stats", "--today", TODAY,
                       store=tmp_path / "s")
    assert code == 0, err
    book = load_workbook(out)
    assert book.sheetnames == ["流动党员统计"]
    rows = rows_of(book.active)
    assert rows[1][:6] == ["组织", "类别", "党员", "流出", "流入", "已报到"]
    with Store.open(tmp_path / "s", PASSPHRASE) as store:
        expected = org_stats(store, dt.date.fromisoformat(TODAY))
    assert [r[0].strip() for r in rows[2:]] == [s.name for s in expected]
    assert [r[2:5] for r in rows[2:]] == [[s.members, s.outflow, s.inflow] for s in expected]
    assert rows[2][:5] == ["城关镇党委", "基层党委", 3, 2, 2]  # 王五 belongs elsewhere


def test_csv_is_one_ledger_with_a_bom_for_excel(tmp_path: Path, run: Run) -> None:
    make_town(tmp_path / "s")
    out = tmp_path / "out.csv"
    code, _, err = run("export", "--out", str(out), store=tmp_path / "s")  # format from suffix
    assert code == 0, err
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["姓名", "性别"] and sorted(r[0] for r in rows[1:]) == ["张三", "李四"]
    code, _, err = run("export", "--format", "csv", "--what", "contacts", "--out", str(out),
                       store=tmp_path / "s")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    assert rows[2][5] == "'=HYPERLINK(\"x\") 在园区工作"  # never run as a formula by Excel
    code, _, err = run("export", "--format", "csv", "--what", "inflow", "--what", "outflow",
                       "--out", str(out), store=tmp_path / "s")
    assert code == 2 and "一个台账" in err


def test_json_holds_every_ledger_with_stable_keys_and_english_labels(tmp_path: Path,
                                                                     run: Run) -> None:
    make_town(tmp_path / "s")
    out = tmp_path / "out.json"
    code, _, err = run("--lang", "en", "export", "--format", "json", "--out", str(out),
                       "--today", TODAY, store=tmp_path / "s", lang="en")
    assert code == 0, err
    data = json.loads(out.read_text("utf-8"))
    assert set(data) == {"as_of", "org", "outflow", "inflow", "contacts", "stats"}
    assert data["as_of"] == TODAY and data["org"] == "城关镇党委"
    zhang = next(r for r in data["outflow"] if r["name"] == "张三")
    assert (zhang["reason"], zhang["status"], zhang["host_org"], zhang["id_number"]) == (
        "work", "reported", "东关村党支部", ZHANG)
    assert data["stats"][0]["reported_rate"] == 0.5
    li = next(r for r in data["outflow"] if r["name"] == "李四")
    assert li["reported_on"] is None and li["host_org"] == "南山区科技园党委"


def test_english_headings_with_lang_en(tmp_path: Path, run: Run) -> None:
    make_town(tmp_path / "s")
    out = tmp_path / "out.xlsx"
    code, _, err = run("--lang", "en", "export", "--out", str(out), "--today", TODAY,
                       store=tmp_path / "s", lang="en")
    assert code == 0, err
    book = load_workbook(out)
    assert book.sheetnames[0] == "Outflow ledger"
    rows = rows_of(book.active)
    assert rows[0][0] == f"Outflow ledger · 城关镇党委 · as of {TODAY}"
    assert rows[1][:4] == ["name", "gender", "birth date", "ID number"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--out", "{tmp}/no/such/dir/x.xlsx"], "输出目录不存在"),
    (["--out", "{tmp}/x.txt"], "--format"),
    (["--out", "{tmp}/x.xlsx", "--today", "2026-02-30"], "--today"),
])
def test_a_bad_out_or_option_is_a_clean_error(tmp_path: Path, run: Run, args: list[str],
                                              needle: str) -> None:
    make_town(tmp_path / "s")
    code, _, err = run("export", *[a.format(tmp=tmp_path) for a in args], store=tmp_path / "s")
    assert code != 0 and needle in err and " | " in err and len(err.strip().splitlines()) == 1


def test_the_real_command_exports_a_workbook(tmp_path: Path) -> None:
    make_town(tmp_path / "s")
    out = tmp_path / "ledger.xlsx"
    r = liudong("export", "--format", "xlsx", "--out", str(out), store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert load_workbook(out).sheetnames[0] == "流出党员台账"

