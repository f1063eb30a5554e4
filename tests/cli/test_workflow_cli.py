"""The workflows on the command line (DESIGN §5): ``transfer`` (M-1.4), ``probation`` (M-2.2c)
and ``record`` for the other record types, as a user runs them — a real process for the
journey, in-process calls for the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import Store
from tests.cli.test_commands import assert_clean_error, liudong
from tests.conftest import PASSPHRASE, create_store
from tui.cli import main


@pytest.fixture
def branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "s"
    store, _ = create_store(path)
    with store:
        own = store.meta["own_org_id"]
        store.set_meta(own_org_id=None)  # as the county would send them: other organizations
        store.put("org", {"name": "十里村党支部", "kind": "branch"})
        store.put("org", {"name": "光山县委", "kind": "county"})
        store.set_meta(own_org_id=own)
        store.put("member", {"name": "张三", "home_org_id": own,
                             "standing": "probationary", "joined_on": "2025-07-15",
                             "probation_ends_on": "2026-07-15"})
    monkeypatch.setenv("LIUDONG_STORE", str(path))
    monkeypatch.setenv("LIUDONG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("LIUDONG_LANG", "zh")
    return path


def reopen(path: Path) -> Store:
    return Store.open(path, PASSPHRASE)


def test_m1_4_a_transfer_from_draft_to_receipt_in_real_processes(branch: Path,
                                                                  tmp_path: Path) -> None:
    r = liudong("transfer", "draft", "张三", "--to-org-id", "十里村", store=branch)
    assert r.returncode == 0, r.stderr
    assert "草稿" in r.stdout and "十里村党支部" in r.stdout
    r = liudong("transfer", "issue", "张三", store=branch)
    assert_clean_error(r, "党费交至")  # the dues month is for the person to give
    r = liudong("transfer", "issue", "张三", "--dues-paid-until", "2026-11", store=branch)
    assert r.returncode == 0, r.stderr
    assert "2026-001" in r.stdout and "回执期限" in r.stdout
    r = liudong("transfer", "list", store=branch)
    assert "已开具" in r.stdout and "2026-001" in r.stdout
    r = liudong("transfer", "receive", "2026-001", store=branch)
    assert r.returncode == 0, r.stderr
    with reopen(branch) as store:
        [member] = store.live("member")
        transfer = next(store.live("transfer"))
        assert member["home_org_id"] == transfer["to_org_id"]
        assert transfer["status"] == "received"
    r = liudong("transfer", "cancel", "2026-001", store=branch)
    assert_clean_error(r, "状态", "received")


def test_m1_4_the_letter_is_printed_only_once_issued(branch: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transfer", "draft", "张三", "--to-org-text", "深圳市南山区某党委"]) == 0
    out = tmp_path / "letter.pdf"
    assert main(["transfer", "letter", "张三", "--out", str(out)]) != 0
    assert "尚未开具" in capsys.readouterr().err and not out.exists()


def test_m2_2c_probation_review_report_and_decision(branch: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probation", "review", "张三"]) == 0
    assert "2026-07-15" in capsys.readouterr().out
    assert main(["probation", "report", "张三", "--text", "表现良好，按时参加流入地组织生活"]) == 0
    assert main(["probation", "decide", "张三", "--decision", "converted"]) != 0
    assert "支部大会日期" in capsys.readouterr().err
    assert main(["probation", "decide", "张三", "--decision", "converted", "--meeting-on",
                 "2026-07-15", "--approved-by-org-id", "城关村", "--approved-on",
                 "2026-07-20"]) != 0
    assert "审批预备党员权限" in capsys.readouterr().err  # a branch may not approve
    with reopen(branch) as store:
        assert next(store.live("member"))["standing"] == "probationary"


def test_m5_3_records_of_any_type_from_the_schema(branch: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The dues ledger (M-5.3), an appraisal (M-2.3e) and an application (M-4.2) through the
    one generic command, whose flags come from the schema."""
    assert main(["record", "add", "fund", "--org-id", "城关村", "--on", "2026-03-01",
                 "--kind", "allocation", "--purpose", "education", "--amount-yuan", "500"]) == 0
    assert main(["record", "add", "fund", "--org-id", "城关村", "--on", "2026-03-05",
                 "--kind", "expense", "--purpose", "教育培训", "--amount-yuan", "120.5"]) == 0
    assert main(["record", "add", "appraisal", "--member-id", "张三", "--year", "2025",
                 "--by-org-id", "城关村", "--result", "优秀"]) == 0
    assert main(["record", "add", "fund", "--org-id", "城关村", "--on", "2026-03-05",
                 "--kind", "expense", "--purpose", "education", "--amount-yuan", "-3"]) != 0
    assert "金额" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["record", "list", "fund"]) == 0
    listing = capsys.readouterr().out
    assert "划拨" in listing and "支出" in listing and "共 2 条" in listing
    app_id = None
    assert main(["record", "add", "application", "--org-id", "城关村", "--person-name", "赵六",
                 "--received-on", "2026-02-01", "--stage", "applicant", "--json"]) == 0
    import json

    app_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["record", "edit", "application", app_id[-8:], "--stage", "candidate"]) != 0
    assert "阶段" in capsys.readouterr().err
    assert main(["record", "edit", "application", app_id[-8:], "--stage", "activist"]) == 0
