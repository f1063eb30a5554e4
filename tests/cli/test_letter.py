"""The introduction letter for a transfer (M-1.4) as the issuing branch prints it: the PDF is
read back as text with pypdf, and its bytes are checked for the embedded font."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from store import LiudongError, NotFound, Store
from tests.conftest import create_store, make_id_number
from tui import letter
from tui.letter import NoCjkFont, find_cjk_font, letter_data, write_letter

TO_ORG = "深圳市南山区粤海街道高新园区党委"
FROM_ORG = "城关村党支部"  # the store's own organization (tests/conftest.py)
TITLES = ("中国共产党党员组织关系介绍信存根", "中国共产党党员组织关系介绍信",
          "中国共产党党员组织关系介绍信回执")


@pytest.fixture
def cjk_font() -> None:
    try:
        find_cjk_font()
    except NoCjkFont:
        if os.environ.get("CI"):
            pytest.fail("no Chinese font: CI must render the letter (./dev test installs one)")
        pytest.skip(f"no Chinese font (./dev test installs {letter.FONT_PACKAGE} as root)")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Store, dict[str, str]]]:
    """The branch, a destination organization, a member and an issued transfer. Organizations
    are the county's to keep: they are written here with no organization of the store's own."""
    store, _ = create_store(tmp_path / "store")
    with store:
        own = store.meta["own_org_id"]
        store.set_meta(own_org_id=None)
        with store.batch() as b:
            b.put("org", {"address": "河南省信阳市光山县城关镇城关村", "phone": "0376-8612345"},
                  own)
            to_org = b.put("org", {"name": TO_ORG, "kind": "committee"})
            member = b.put("member", {
                "name": "蒋十六", "gender": "male", "ethnicity": "汉", "standing": "full",
                "id_number": make_id_number(birth="19850315"), "phone": "13912345678",
                "home_org_id": own})
            transfer = b.put("transfer", {
                "member_id": member, "from_org_id": own, "to_org_id": to_org,
                "letter_no": "GS-2026-017", "dues_paid_until": "2026-12", "valid_days": 30,
                "issued_on": "2026-11-20", "receipt_due_on": "2026-12-20", "status": "issued"})
        store.set_meta(own_org_id=own)
        yield store, {"own": own, "to_org": to_org, "member": member, "transfer": transfer}


def text_of(pdf: Path) -> str:
    reader = PdfReader(pdf)
    assert len(reader.pages) == 1
    # lines may break anywhere; pypdf reads a NUL between the glyphs of a CFF font (Noto CJK)
    return "".join(reader.pages[0].extract_text().replace("\x00", "").split())


def test_the_letter_has_the_three_parts_each_with_the_number(
        cjk_font: None, world: tuple[Store, dict[str, str]], tmp_path: Path) -> None:
    store, ids = world
    out = tmp_path / "letter.pdf"
    write_letter(letter_data(store, ids["transfer"]), out)
    text = text_of(out)
    for title in TITLES:
        assert title in text
    # the number heads every part and runs across both cut lines
    assert text.count("GS-2026-017") == 5 and text.count("骑缝第GS-2026-017号") == 2
    assert "兹介绍蒋十六同志（男，41岁，汉族），系中共正式党员" in text
    assert make_id_number(birth="19850315") in text
    assert f"组织关系由{FROM_ORG}转到{TO_ORG}，请接转组织关系" in text
    assert "党费已交到2026年12月（贰零贰陆年壹拾贰月）" in text
    assert "有效期30天（叁拾天）" in text
    assert "蒋十六同志的党员组织关系已转达我处，特此回执" in text
    assert text.count("（盖章）") == 3 and text.count("2026年11月20日") == 2
    assert "0376-8612345" in text and "河南省信阳市光山县城关镇城关村" in text
    assert "2026年12月20日前寄回" in text
    assert "草稿" not in text


def test_the_page_is_a4_portrait_with_the_font_embedded_and_subset(
        cjk_font: None, world: tuple[Store, dict[str, str]], tmp_path: Path) -> None:
    store, ids = world
    out = tmp_path / "letter.pdf"
    write_letter(letter_data(store, ids["transfer"]), out)
    box = PdfReader(out).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    data = out.read_bytes()
    assert b"/FontFile2" in data or b"/FontFile3" in data
    assert len(data) < 300_000, len(data)  # a subset: a CJK font is several megabytes


def test_the_file_is_private_and_appears_whole(
        cjk_font: None, world: tuple[Store, dict[str, str]], tmp_path: Path) -> None:
    store, ids = world
    out = tmp_path / "letters" / "GS-2026-017.pdf"
    out.parent.mkdir()
    out.write_bytes(b"an older letter")
    out.chmod(0o644)
    write_letter(letter_data(store, ids["transfer"]), out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds an ID number
    assert out.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_data_for_a_destination_outside_the_system_and_a_draft(
        cjk_font: None, world: tuple[Store, dict[str, str]], tmp_path: Path) -> None:
    store, ids = world
    store.set_meta(own_org_id=None)
    member = store.put("member", {"name": "欧阳娜娜", "gender": "female", "ethnicity": "维吾尔族",
                                  "standing": "probationary", "home_org_id": ids["own"],
                                  "id_number": make_id_number(birth="20000229", seq=222)})
    transfer = store.put("transfer", {"member_id": member, "from_org_id": ids["own"],
                                      "to_org_text": "乌鲁木齐市天山区某社区党委",
                                      "valid_days": 15, "dues_paid_until": "2027-01",
                                      "issued_on": "2026-02-28", "status": "draft"})
    data = letter_data(store, transfer, lang="en")
    assert (data.to_org, data.age, data.letter_no) == ("乌鲁木齐市天山区某社区党委", 25, "")
    assert data.labels == {"gender": "female", "standing": "probationary", "status": "draft"}
    out = tmp_path / "draft.pdf"
    write_letter(data, out)
    text = text_of(out)
    assert "（女，25岁，维吾尔族），系中共预备党员" in text  # the form is Chinese whatever lang
    assert "转到乌鲁木齐市天山区某社区党委" in text
    assert "贰零贰柒年零壹月" in text and "有效期15天（壹拾伍天）" in text
    assert text.count("草稿") == 3  # a draft is marked as one on every part


def test_an_unknown_transfer_is_not_found(world: tuple[Store, dict[str, str]]) -> None:
    store, ids = world
    with pytest.raises(NotFound):
        letter_data(store, "01NOSUCHTRANSFER0000000000")
    with pytest.raises(NotFound):
        letter_data(store, ids["member"])  # a record, but not a transfer


def test_no_font_is_a_clear_error_and_writes_nothing(
        world: tuple[Store, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, ids = world
    data = letter_data(store, ids["transfer"])
    out = tmp_path / "letter.pdf"

    monkeypatch.setenv("LIUDONG_CJK_FONT", str(tmp_path / "missing.ttf"))
    with pytest.raises(NoCjkFont) as caught:
        write_letter(data, out)
    assert "LIUDONG_CJK_FONT" in caught.value.zh and "missing.ttf" in caught.value.en

    not_a_font = tmp_path / "fake.ttf"
    not_a_font.write_bytes(b"not a font at all")
    monkeypatch.setenv("LIUDONG_CJK_FONT", str(not_a_font))
    with pytest.raises(NoCjkFont):
        write_letter(data, out)

    monkeypatch.delenv("LIUDONG_CJK_FONT")
    monkeypatch.setattr(letter, "font_candidates", lambda: [(tmp_path / "none.ttc", "SC")])
    with pytest.raises(LiudongError) as caught:
        write_letter(data, out)
    message = caught.value.message("zh")
    assert "找不到中文字体" in message and "no Chinese font" in message
    assert message.count("fonts-wqy-microhei") == 2 and "\n" not in message
    assert caught.value.exit_code == 2
    assert list(tmp_path.glob("*.pdf")) == [] and list(tmp_path.glob(".letter*")) == []
