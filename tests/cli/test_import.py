"""``liudong import FILE``: a roster in, all rows or none (DESIGN §5; M-1.2 registration,
M-6 the information system's exports). Rosters are written here as the national party-member
information system and Chinese Excel/WPS write them: Chinese headings, GBK csv, xlsx cells
holding dates and numbers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from store import TEST_KDF, Store
from tests.cli.test_commands import assert_clean_error, liudong
from tests.conftest import PASSPHRASE, create_store, make_id_number

ZHANG = make_id_number("330106", "19850315", 123)  # male (odd sequence)
LI = make_id_number("330106", "19900101", 124)  # female
WANG = make_id_number("330106", "19780520", 135)
NATIONAL = ["姓名", "性别", "公民身份号码", "民族", "出生日期", "学历", "入党日期", "转正日期",
            "人员类别", "所在党支部", "联系电话", "备注", "籍贯"]

Run = Callable[..., tuple[int, str, str]]


def make_county(path: Path) -> dict[str, str]:
    """A town committee (the store's own organization) with two branches."""
    store, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF)
    with store:
        town = store.put("org", {"name": "城关镇党委", "kind": "committee"})
        a = store.put("org", {"name": "城关村党支部", "kind": "branch", "parent_id": town})
        b = store.put("org", {"name": "东关村党支部", "kind": "branch", "parent_id": town})
        store.set_meta(own_org_id=town)
    return {"town": town, "a": a, "b": b}


def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """The command line in this process (fast); ``liudong`` runs it as a real process."""
    from tui.cli import main

    def call(*args: str, store: Path, lang: str = "zh") -> tuple[int, str, str]:
        monkeypatch.setenv("LIUDONG_STORE", str(store))
        monkeypatch.setenv("LIUDONG_PASSPHRASE", PASSPHRASE)
        monkeypatch.setenv("LIUDONG_LANG", lang)
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    return in_process(monkeypatch, capsys)


def write_xlsx(path: Path, rows: list[list[Any]], title: str | None = None) -> Path:
    book = Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8-sig") -> Path:
    text = "\r\n".join(",".join("" if c is None else str(c) for c in row) for row in rows)
    path.write_bytes((text + "\r\n").encode(encoding))
    return path


def members(store_path: Path) -> dict[str, dict[str, Any]]:
    """The members of the store, reopened from disk, by name."""
    with Store.open(store_path, PASSPHRASE) as store:
        return {m["name"]: dict(m) for m in store.live("member")}


def test_national_system_xlsx_imports_every_column_m1_2_m6(tmp_path: Path, run: Run) -> None:
    orgs = make_county(tmp_path / "s")
    path = write_xlsx(tmp_path / "roster.xlsx", [
        NATIONAL,
        ["张三", "男", ZHANG, "汉族", dt.datetime(1985, 3, 15), "大学本科", "2010/7/1",
         dt.datetime(2011, 7, 1), "正式党员", "城关村党支部", 13800138000, None, "浙江"],
        ["李四", "女", LI, "回族", "1990年1月1日", "大专", "2026-01-10", "2027-01-10",
         "预备党员", "东关村党支部", "139 0013 9000", "外出务工", None],
    ], title="党员基本信息（导出日期 2026-11-30）")
    code, out, err = run("import", str(path), store=tmp_path / "s")
    assert code == 0, err
    assert "已导入 2 人，重复 0 人，错误 0 处" in out
    assert "无法识别" in out and "籍贯" in out  # an unknown column is named, then ignored
    found = members(tmp_path / "s")
    zhang, li = found["张三"], found["李四"]
    assert (zhang["gender"], zhang["birth_date"], zhang["education"], zhang["joined_on"],
            zhang["standing"], zhang["phone"], zhang["home_org_id"]) == (
        "male", "1985-03-15", "bachelor", "2010-07-01", "full", "13800138000", orgs["a"])
    assert zhang["id_number"] == ZHANG and zhang["ethnicity"] == "汉族"
    assert zhang["notes"] == "转正日期：2011-07-01"  # a full member's conversion, kept in notes
    assert "probation_ends_on" not in zhang
    assert (li["standing"], li["probation_ends_on"], li["home_org_id"], li["birth_date"],
            li["notes"]) == ("probationary", "2027-01-10", orgs["b"], "1990-01-01", "外出务工")


def test_english_headings_in_any_case_and_utf8_bom_csv(tmp_path: Path, run: Run) -> None:
    create_store(tmp_path / "s")[0].close()
    path = write_csv(tmp_path / "r.csv", [
        ["NAME", "Gender", "ID number", "mobile phone", "joined_on", "Standing", "Education"],
        ["Zhang San", "male", ZHANG, "13800138000", "2010-07-01", "full", "master"],
    ], "utf-8-sig")
    code, out, err = run("--lang", "en", "import", str(path), store=tmp_path / "s", lang="en")
    assert code == 0, err
    assert "imported 1, duplicates 0, errors 0" in out
    m = members(tmp_path / "s")["Zhang San"]
    assert (m["id_number"], m["phone"], m["education"], m["birth_date"]) == (
        ZHANG, "13800138000", "master", "1985-03-15")


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8"])
def test_csv_from_chinese_excel_in_gbk_or_utf8(tmp_path: Path, run: Run, encoding: str) -> None:
    create_store(tmp_path / "s")[0].close()
    path = write_csv(tmp_path / "r.csv", [
        ["姓名", "性别", "身份证号码", "手机号码", "所在党组织"],
        ["张三", "男", ZHANG, "13800138000", "城关村党支部"],
        ["欧阳娜娜", "女", LI, "13900139000", ""],
    ], encoding)
    code, _, err = run("import", str(path), store=tmp_path / "s")
    assert code == 0, err
    assert set(members(tmp_path / "s")) == {"张三", "欧阳娜娜"}


def test_every_bad_row_is_listed_and_nothing_is_written(tmp_path: Path, run: Run) -> None:
    """All rows or none: one bad row keeps the good ones out too; each error names the row
    (header row = 1), the column as the file heads it and the rule."""
    make_county(tmp_path / "s")
    bad_check = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
    path = write_csv(tmp_path / "r.csv", [
        ["姓名", "公民身份号码", "联系电话", "入党日期", "所在党支部"],
        ["张三", WANG, "13800138000", "2010-07-01", "城关村党支部"],  # good
        ["李四", bad_check, "13900139000", "2010-07-01", "城关村党支部"],
        ["王五", "", "12345", "2099-01-01", "城关村党支部"],
        ["赵六", "", "", "", "西关村党支部"],
    ], "gbk")
    code, out, err = run("import", str(path), store=tmp_path / "s")
    assert code == 2
    assert "3 行" not in err and "4 处错误，未导入任何记录" in err
    lines = [line for line in out.splitlines() if line.startswith("第 ")]
    assert lines[0].startswith("第 3 行「公民身份号码」：「身份证号」校验位不正确")
    assert lines[1].startswith("第 4 行「联系电话」：「手机号」应为 11 位手机号")
    assert lines[2].startswith("第 4 行「入党日期」：「入党日期」不能晚于今天")
    assert lines[3].startswith("第 5 行「所在党支部」：") and "西关村党支部" in lines[3]
    assert all(" | row " in line for line in lines)  # bilingual, Chinese first
    assert members(tmp_path / "s") == {}  # reopened from disk: nothing was written
    code, out, err = run("--lang", "en", "import", str(path), "--json", store=tmp_path / "s",
                         lang="en")
    report = json.loads(out)
    assert code == 2 and report["imported"] == 0 and report["valid"] == 1
    assert [(e["row"], e["column"], e["rule"]) for e in report["errors"]] == [
        (3, "公民身份号码", "id_checksum"), (4, "联系电话", "phone"),
        (4, "入党日期", "date_future"), (5, "所在党支部", "org_unknown")]
    assert err.startswith("error: 4 error(s): nothing was imported")


def test_a_file_without_a_name_column_is_refused(tmp_path: Path, run: Run) -> None:
    create_store(tmp_path / "s")[0].close()
    path = write_csv(tmp_path / "r.csv", [["身份证号", "电话"], [ZHANG, "13800138000"]])
    code, _, err = run("import", str(path), store=tmp_path / "s")
    assert code == 2 and "找不到“姓名”列" in err and "no name column" in err


def test_duplicates_in_the_store_and_in_the_file(tmp_path: Path, run: Run) -> None:
    """By ID number: one already registered is skipped; one person twice in the file is
    imported once; two different people under one number is an error naming both rows."""
    store, _ = create_store(tmp_path / "s")
    with store:
        store.put("member", {"name": "张三", "id_number": ZHANG, "standing": "full",
                             "home_org_id": store.meta["own_org_id"]})
    rows = [["姓名", "身份证号", "手机号"],
            ["张三", ZHANG, "13800138000"],  # in the store
            ["李四", LI, "13900139000"],
            ["李四", LI, "13900139000"]]  # the same person again
    path = write_csv(tmp_path / "r.csv", rows)
    code, out, err = run("import", str(path), store=tmp_path / "s")
    assert code == 0, err
    assert "第 2 行 张三 已在登记中" in out and "第 4 行 李四 与第 3 行是同一人" in out
    assert "已导入 1 人，重复 2 人，错误 0 处" in out
    assert sorted(members(tmp_path / "s")) == ["张三", "李四"]

    path = write_csv(tmp_path / "r2.csv", [["姓名", "身份证号"], ["王五", WANG],
                                           ["王武", WANG]])
    code, out, err = run("import", str(path), store=tmp_path / "s")
    assert code == 2
    assert "第 3 行「身份证号」：与第 2 行的「身份证号」相同，但两行其他信息不一致" in out
    assert "王五" not in members(tmp_path / "s")


def test_importing_the_same_file_again_imports_nothing(tmp_path: Path, run: Run) -> None:
    create_store(tmp_path / "s")[0].close()
    path = write_xlsx(tmp_path / "r.xlsx", [["姓名", "公民身份号码"], ["张三", ZHANG], ["李四", LI]])
    assert run("import", str(path), store=tmp_path / "s")[0] == 0
    code, out, err = run("import", str(path), store=tmp_path / "s")
    assert code == 0, err
    assert "已导入 0 人，重复 2 人" in out and "没有新的党员需要导入" in out
    assert len(members(tmp_path / "s")) == 2


def test_dry_run_lists_what_would_be_imported_and_writes_nothing(tmp_path: Path,
                                                                 run: Run) -> None:
    create_store(tmp_path / "s")[0].close()
    path = write_xlsx(tmp_path / "r.xlsx", [["姓名", "公民身份号码"], ["张三", ZHANG], ["李四", LI]])
    code, out, err = run("import", str(path), "--dry-run", store=tmp_path / "s")
    assert code == 0, err
    assert "试运行（未写入）：可导入 2 人" in out and "张三" in out and "李四" in out
    assert ZHANG not in out and ZHANG[-4:] in out  # ID numbers masked as on screen
    code, out, _ = run("import", str(path), "--dry-run", "--json", store=tmp_path / "s")
    report = json.loads(out)
    assert (report["dry_run"], report["valid"], report["imported"]) == (True, 2, 0)
    assert members(tmp_path / "s") == {}


def test_org_flag_is_the_default_for_rows_without_one(tmp_path: Path, run: Run) -> None:
    orgs = make_county(tmp_path / "s")
    path = write_csv(tmp_path / "r.csv", [["姓名", "所在党支部"], ["张三", ""],
                                          ["李四", "城关村党支部"]])
    code, _, err = run("import", str(path), "--org", "东关村", store=tmp_path / "s")
    assert code == 0, err
    found = members(tmp_path / "s")
    assert found["张三"]["home_org_id"] == orgs["b"] and found["李四"]["home_org_id"] == orgs["a"]


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("missing.xlsx", None, "找不到文件"),
    ("roster.xlsx", b"PK\x03\x04 not really a workbook", "无法读取 Excel 文件"),
    ("roster.xls", b"\xd0\xcf\x11\xe0", "另存为 .xlsx"),
    ("roster.docx", b"x", "只能导入 .xlsx 或 .csv"),
    ("empty.csv", b"", "没有数据"),
    ("bad.csv", "姓名\n张三\n".encode("utf-16-le") + b"\x81\x30\xff", "字符编码"),
])
def test_a_bad_file_is_one_clean_error(tmp_path: Path, run: Run, name: str,
                                       content: bytes | None, needle: str) -> None:
    create_store(tmp_path / "s")[0].close()
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, _, err = run("import", str(path), store=tmp_path / "s")
    assert code == 2 and needle in err and " | " in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_real_command_refuses_a_corrupt_xlsx_before_asking_for_the_passphrase(
        tmp_path: Path) -> None:
    """As a user runs it: a real ``liudong`` process, no passphrase given: the file is judged
    first, so nothing is asked for a file that cannot be imported."""
    create_store(tmp_path / "s")[0].close()
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04" + bytes(200))
    assert_clean_error(liudong("import", str(bad), store=tmp_path / "s", passphrase=None),
                       "无法读取 Excel 文件", "cannot read the Excel file")
