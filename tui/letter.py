"""The introduction letter for a transfer of membership (组织关系介绍信, MANDATE M-1.4) as a PDF.

The form is the Central Organization Department's three-part one (组通字〔2006〕45号): the stub
(存根) the issuing organization keeps, the letter (介绍信) the member carries, and the receipt
(回执) the receiving organization sends back within a month. Each part carries the letter
number; cut lines with the number across them separate the parts, where the seal straddles the
cut (骑缝章). The month the dues are paid to and the validity are written in capital numerals as
well, as the form asks, so that they cannot be altered.

``letter_data`` reads what the letter needs from the store; ``write_letter`` draws it on one A4
page with a Chinese font found on the system (embedded, subset) and writes the file atomically,
readable by its owner only: it holds an ID number.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store import LiudongError, NotFound, Store
from store.fsutil import fsync_dir, fsync_fd
from store.numerals import capital, capital_month
from store.schema import choice_label
from store.validate import birth_of

FONT_ENV = "LIUDONG_CJK_FONT"
FONT_PACKAGE = "fonts-wqy-microhei"  # the smallest Debian package with the glyphs we need
PROBE = "党组织关系介绍信壹贰叁肆伍陆柒捌玖拾"  # a font that lacks these is of no use here


class NoCjkFont(LiudongError):
    """No font with Chinese glyphs to draw the letter with."""

    exit_code = 2

    def __init__(self, given: str | None = None) -> None:
        if given:
            super().__init__(
                f"{FONT_ENV} 所指的字体不存在或不含中文字形：{given}",
                f"{FONT_ENV} names no font with Chinese glyphs: {given}",
            )
        else:
            super().__init__(
                f"找不到中文字体，无法生成介绍信：请安装软件包 {FONT_PACKAGE}（apt install），"
                f"或用 {FONT_ENV} 指定字体文件",
                f"no Chinese font to draw the letter with: install the package {FONT_PACKAGE} "
                f"(apt install) or set {FONT_ENV} to a font file",
            )


# -- fonts -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FontChoice:
    path: Path
    face: int = 0  # the font's number in a collection (.ttc)


def font_candidates() -> list[tuple[Path, str]]:
    """Where the usual Chinese fonts live, in order of preference, each with a part of the name
    of the face to take from a collection (Noto CJK puts its Japanese face first)."""
    windows = Path(os.environ.get("WINDIR", "C:\\Windows")) / "Fonts"
    return [
        (Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"), "SC"),  # fonts-noto-cjk
        (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), "SC"),
        (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), "CN"),  # fonts-arphic-uming
        (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), "Zen Hei"),  # fonts-wqy-zenhei
        (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), "Micro Hei"),  # fonts-wqy-microhei
        (windows / "simsun.ttc", "SimSun"),
        (windows / "msyh.ttc", "YaHei"),
        (Path("/System/Library/Fonts/Supplemental/Songti.ttc"), "Songti SC"),
        (Path("/System/Library/Fonts/PingFang.ttc"), "PingFang SC"),
    ]


def _usable(path: Path, hint: str) -> FontChoice | None:
    """The face of ``path`` to use (named like ``hint`` if it is a collection), if it exists and
    draws Chinese."""
    from fontTools.ttLib import TTCollection, TTFont, TTLibError

    if not path.is_file():
        return None
    try:
        if path.suffix.lower() in (".ttc", ".otc"):
            names = [f["name"].getDebugName(4) or "" for f in TTCollection(path, lazy=True).fonts]
            face = next((i for i, n in enumerate(names) if hint and hint in n), 0)
        else:
            face = 0
        cmap = TTFont(path, fontNumber=face, lazy=True).getBestCmap() or {}
    except (OSError, ValueError, KeyError, AssertionError, struct.error, TTLibError):
        return None  # not a font fontTools can read
    return FontChoice(path, face) if all(ord(c) in cmap for c in PROBE) else None


def find_cjk_font() -> FontChoice:
    """``LIUDONG_CJK_FONT`` if set (and then only it), else the first usable candidate."""
    given = os.environ.get(FONT_ENV)
    if given:
        found = _usable(Path(given), "SC")
        if found is None:
            raise NoCjkFont(given)
        return found
    for path, hint in font_candidates():
        found = _usable(path, hint)
        if found is not None:
            return found
    raise NoCjkFont()


# -- what the letter says --------------------------------------------------------------------------

@dataclass(frozen=True)
class LetterData:
    """Everything printed on the letter. Empty strings and None stay blank on the form, to be
    filled in by hand."""

    transfer_id: str
    status: str
    letter_no: str
    member_name: str
    gender: str  # male | female | ""
    age: int | None
    ethnicity: str  # as recorded: 汉 or 汉族
    standing: str  # full | probationary | ""
    id_number: str
    member_phone: str
    from_org: str
    to_org: str
    dues_paid_until: str  # YYYY-MM
    valid_days: int | None
    issued_on: str  # YYYY-MM-DD
    receipt_due_on: str
    issuer_address: str
    issuer_phone: str
    # gender, standing and status in the language asked for, for a caller to show on screen;
    # the form itself is always in Chinese
    labels: dict[str, str] = field(default_factory=dict)


def _age(born: str | None, on: dt.date) -> int | None:
    if not born:
        return None
    b = dt.date.fromisoformat(born)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def letter_data(store: Store, transfer_id: str, lang: str = "zh") -> LetterData:
    """What the letter for transfer ``transfer_id`` says, read from ``store``."""
    transfer = store.get(transfer_id)
    if transfer is None or transfer.get("type") != "transfer":
        raise NotFound("组织关系转接记录", "transfer", transfer_id)

    t: Mapping[str, Any] = transfer
    member: Mapping[str, Any] = store.get(t.get("member_id") or "") or {}
    from_org: Mapping[str, Any] = store.get(t.get("from_org_id") or "") or {}
    to_org: Mapping[str, Any] = store.get(t.get("to_org_id") or "") or {}
    issued_on = t.get("issued_on") or ""
    on = dt.date.fromisoformat(issued_on) if issued_on else dt.date.today()

    def text(rec: Mapping[str, Any], name: str) -> str:
        value = rec.get(name)
        return "" if value is None else str(value)

    gender, standing, status = text(member, "gender"), text(member, "standing"), text(t, "status")
    labels = {"gender": choice_label("gender", gender, lang) if gender else "",
              "standing": choice_label("standing", standing, lang) if standing else "",
              "status": choice_label("transfer_status", status, lang) if status else ""}
    return LetterData(
        transfer_id=transfer_id, status=status, letter_no=text(t, "letter_no"),
        member_name=text(member, "name"), gender=gender, age=_age(birth_of(member), on),
        ethnicity=text(member, "ethnicity"), standing=standing,
        id_number=text(member, "id_number"), member_phone=text(member, "phone"),
        from_org=text(from_org, "name"),
        to_org=text(to_org, "name") or text(t, "to_org_text"),
        dues_paid_until=text(t, "dues_paid_until"),
        valid_days=t.get("valid_days"), issued_on=issued_on,
        receipt_due_on=text(t, "receipt_due_on"),
        issuer_address=text(from_org, "address"), issuer_phone=text(from_org, "phone"),
        labels=labels)


# -- the form ---------------------------------------------------------------------------------------

GAP = "\u3000" * 4  # a blank to fill in by hand: four ideographic spaces, underlined
INDENT = "\u3000\u3000"


@dataclass(frozen=True)
class Fill:
    """A filled-in value, underlined as on a completed form; blank (to write in) when empty."""

    value: object
    blank: str = GAP

    @property
    def text(self) -> str:
        return self.blank if self.value in (None, "") else str(self.value)


Part = str | Fill


def _date(iso: str) -> str:
    if not iso:
        return "\u3000\u3000\u3000\u3000年\u3000\u3000月\u3000\u3000日"
    d = dt.date.fromisoformat(iso)
    return f"{d.year} 年 {d.month} 月 {d.day} 日"


def _paragraphs(d: LetterData) -> dict[str, list[list[Part]]]:
    """The wording of each part, after the 2006 form; what was filled in is a ``Fill``."""
    sex = {"male": "男", "female": "女"}.get(d.gender, "男/女")
    standing = {"full": "正式", "probationary": "预备"}.get(d.standing, "正式/预备")
    nation = d.ethnicity.removesuffix("族")
    person: list[Part] = [
        Fill(d.member_name), "同志（", sex, "，", Fill(d.age), "岁，", Fill(nation), "族），系中共",
        Fill(standing), "党员，身份证号码", Fill(d.id_number, GAP * 3), "，组织关系由",
        Fill(d.from_org), "转到", Fill(d.to_org)]
    dues: list[Part] = ["该同志党费已交到"]
    if d.dues_paid_until:
        year, month = (int(x) for x in d.dues_paid_until.split("-"))
        dues += [" ", Fill(f"{year} 年 {month} 月"), "（", Fill(capital_month(d.dues_paid_until)),
                 "）。"]
    else:
        dues += [Fill(""), "年", Fill(""), "月。"]
    valid: list[Part] = ["有效期"]
    if d.valid_days is not None:
        valid += [" ", Fill(d.valid_days), " 天（", Fill(capital(d.valid_days)), "天）"]
    else:
        valid += [Fill(""), "天"]
    return {
        "stub": [[*person, "。"], [*dues, *valid, "。"]],
        "letter": [[Fill(d.to_org, GAP * 3), "："],
                   [INDENT, "兹介绍", *person, "，请接转组织关系。"],
                   [INDENT, *dues],
                   [INDENT, "（", *valid, "）"]],
        "receipt": [[Fill(d.from_org, GAP * 3), "："],
                    [INDENT, Fill(d.member_name), "同志的党员组织关系已转达我处，特此回执。"]],
    }


# A line may not begin with closing punctuation (禁则): it hangs in the margin instead.
NO_LINE_START = set("，。、；：？！）》」』”’%")
_ATOMS = re.compile(r"[0-9A-Za-z][0-9A-Za-z./@:_-]*| |.", re.DOTALL)


def _lines(parts: list[Part], width: float,
           measure: Any) -> list[list[tuple[str, bool]]]:
    """Break a paragraph into lines: between any two Chinese characters, never inside a run of
    letters and digits (an ID number, a letter number), unless the run is wider than a line."""
    atoms: list[tuple[str, bool]] = []
    for part in parts:
        text, filled = (part.text, True) if isinstance(part, Fill) else (part, False)
        for atom in _ATOMS.findall(text):
            if measure(atom) > width:
                atoms.extend((c, filled) for c in atom)
            else:
                atoms.append((atom, filled))
    lines: list[list[tuple[str, bool]]] = [[]]
    used = 0.0
    for atom, filled in atoms:
        w = measure(atom)
        if used + w > width and lines[-1] and atom not in NO_LINE_START:
            lines.append([])
            used = 0.0
            if atom == " ":
                continue
        lines[-1].append((atom, filled))
        used += w
    return lines


PAGE_W, PAGE_H = 210.0, 297.0
LEFT, RIGHT = 18.0, 192.0  # the printed area
WIDTH = RIGHT - LEFT
BODY_SIZES = (12.0, 11.0, 10.0, 9.0)  # points: the largest that fits the page is used


class _Form:
    """One A4 page drawn part by part, top to bottom."""

    def __init__(self, font: FontChoice, body: float) -> None:
        from fpdf import FPDF

        self.body, self.line = body, body * 0.6  # points, and the line's height in mm

        pdf = FPDF(orientation="P", unit="mm", format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(LEFT, 10, PAGE_W - RIGHT)
        pdf.add_font("cjk", "", str(font.path), collection_font_number=font.face)
        pdf.set_title("中国共产党党员组织关系介绍信")
        pdf.set_creator("Liudong")
        pdf.add_page()
        self.pdf = pdf

    def font(self, size: float) -> None:
        self.pdf.set_font("cjk", "", size)

    def header(self, y: float, part: str, title: str, letter_no: str) -> float:
        pdf = self.pdf
        self.font(9)
        pdf.set_text_color(90)
        pdf.set_xy(LEFT, y)
        pdf.cell(40, 5, part)
        pdf.set_text_color(0)
        self.font(11)
        pdf.set_xy(RIGHT - 70, y)
        pdf.cell(70, 5, f"第 {letter_no or GAP} 号", align="R")
        self.font(17)
        from fpdf.enums import TextMode

        with pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=0.25):  # a firm title
            pdf.set_xy(LEFT, y + 7)
            pdf.cell(WIDTH, 9, title, align="C")
        return y + 20

    def paragraph(self, y: float, parts: list[Part], size: float | None = None,
                  line: float | None = None) -> float:
        """A paragraph from ``y`` across the printed width; returns where the next one starts.
        What was filled in is underlined (a blank too, to be written on)."""
        pdf = self.pdf
        size, line = size or self.body, line or self.line
        self.font(size)
        for row in _lines(parts, WIDTH, pdf.get_string_width):
            pdf.set_xy(LEFT, y)
            runs: list[tuple[str, bool]] = []
            for atom, filled in row:
                if runs and runs[-1][1] == filled:
                    runs[-1] = (runs[-1][0] + atom, filled)
                else:
                    runs.append((atom, filled))
            for text, filled in runs:
                pdf.set_font("cjk", "U" if filled else "", size)
                pdf.cell(pdf.get_string_width(text), line, text)
            y += line
        self.font(size)
        return y

    def small(self, y: float, parts: list[Part]) -> float:
        return self.paragraph(y, parts, self.body - 2, (self.body - 2) * 0.58)

    def signature(self, y: float, org: str, date: str) -> float:
        """Bottom right: the place for the seal, the organization and the date."""
        pdf = self.pdf
        x, w = RIGHT - 78, 78
        self.font(9.5)
        pdf.set_text_color(120)
        pdf.set_xy(x, y)
        pdf.cell(w, 5, "（盖章）", align="C")
        pdf.set_text_color(0)
        self.font(self.body)
        pdf.set_xy(x, y + 6)
        pdf.multi_cell(w, 6, org or GAP * 4, align="C")
        pdf.set_xy(x, pdf.get_y())
        pdf.cell(w, 6, date, align="C")
        return pdf.get_y() + 6

    def seal_circle(self, y: float) -> None:
        """A faint circle where the seal goes, as printed forms leave room for it."""
        pdf = self.pdf
        with pdf.local_context(draw_color=(200, 200, 200), line_width=0.2):
            pdf.set_dash_pattern(dash=1, gap=1)
            pdf.circle(x=RIGHT - 39, y=y, radius=17)
            pdf.set_dash_pattern()

    def cut(self, y: float, letter_no: str) -> None:
        """A dashed cut line with the letter number across it, where the seam seal goes."""
        pdf = self.pdf
        label = f"骑缝　第 {letter_no or GAP} 号　（加盖骑缝章）"
        self.font(9)
        w = pdf.get_string_width(label) + 6
        mid = PAGE_W / 2
        with pdf.local_context(draw_color=(110, 110, 110), line_width=0.3):
            pdf.set_dash_pattern(dash=2.5, gap=1.5)
            pdf.line(8, y, mid - w / 2, y)
            pdf.line(mid + w / 2, y, PAGE_W - 8, y)
            pdf.set_dash_pattern()
        pdf.set_text_color(80)
        pdf.set_xy(mid - w / 2, y - 2.5)
        pdf.cell(w, 5, label, align="C")
        pdf.set_text_color(0)

    def watermark(self, top: float, bottom: float, text: str | None) -> None:
        """Across a part that is not a letter in force (a draft, a cancelled letter)."""
        if not text:
            return
        pdf, mid = self.pdf, (top + bottom) / 2
        self.font(36)
        with pdf.local_context(text_color=(150, 150, 150), fill_opacity=0.3), \
                pdf.rotation(12, PAGE_W / 2, mid):  # see-through: the text under it stays legible
            pdf.set_xy(LEFT, mid - 8)
            pdf.cell(WIDTH, 16, text, align="C")


NOT_IN_FORCE = {"draft": "草稿　不得使用", "cancelled": "已作废", "returned": "已退回"}


def _render(d: LetterData, font: FontChoice) -> bytes:
    """The letter with the largest type that keeps it on one page (long names wrap)."""
    bottom = PAGE_H - 8
    for body in BODY_SIZES:
        end = _draw(_Form(font, body), d, 0)
        if end <= bottom:
            break
    form = _Form(font, body)  # again, with the room left shared between the three parts
    _draw(form, d, min(bottom - end, 36) / 3 if end < bottom else 0)
    return bytes(form.pdf.output())


def _draw(form: _Form, d: LetterData, spare: float) -> float:
    """Draw the three parts, each with ``spare`` mm more room for the seal; returns where the
    page's content ends."""
    text = _paragraphs(d)
    mark = NOT_IN_FORCE.get(d.status)
    issued = _date(d.issued_on)

    # 第一联 存根: kept by the issuing organization, with the receipt pasted on when it returns
    part = 10.0
    y = form.header(part, "第一联", "中国共产党党员组织关系介绍信存根", d.letter_no)
    for p in text["stub"]:
        y = form.paragraph(y, p)
    top, box = y + 3, 22 + spare
    form.pdf.set_draw_color(170)
    form.pdf.rect(LEFT, top, 80, box)
    form.pdf.set_draw_color(0)
    form.pdf.set_xy(LEFT, top + box / 2 - 3)
    form.font(9.5)
    form.pdf.cell(80, 5.5, "（贴回执联处）", align="C")
    form.seal_circle(top + box - 13)
    y = max(form.signature(top + box - 22, d.from_org, issued), top + box) + 4
    form.watermark(part, y, mark)
    form.cut(y, d.letter_no)

    # 第二联 介绍信: carried by the member to the receiving organization
    part = y + 5
    y = form.header(part, "第二联", "中国共产党党员组织关系介绍信", d.letter_no)
    for p in text["letter"]:
        y = form.paragraph(y, p)
    y += spare
    form.seal_circle(y + 10)
    y = form.signature(y + 2, d.from_org, issued)
    y = form.small(y, ["党员联系电话或其他联系方式：", Fill(d.member_phone, GAP * 4)])
    y = form.small(y, ["党员原所在基层党委通讯地址：", Fill(d.issuer_address, GAP * 8)])
    y = form.small(y, ["联系电话：", Fill(d.issuer_phone, GAP * 3), INDENT, "传真：", Fill(""),
                       INDENT, "邮编：", Fill("")]) + 4
    form.watermark(part, y, mark)
    form.cut(y, d.letter_no)

    # 第三联 回执: returned by the receiving organization within a month
    part = y + 5
    y = form.header(part, "第三联", "中国共产党党员组织关系介绍信回执", d.letter_no)
    for p in text["receipt"]:
        y = form.paragraph(y, p)
    y += spare
    form.seal_circle(y + 10)
    y = form.signature(y + 2, d.to_org, _date(""))
    y = form.small(y, ["经办人：", Fill(""), INDENT, "联系电话：", Fill("", GAP * 2)])
    note: list[Part] = ["注：回执联由接收党员组织关系的基层党委在接收党员后一个月内寄回或传真至"
                        "党员原所在基层党委"]
    if d.receipt_due_on:
        note += ["，请于 ", Fill(_date(d.receipt_due_on)), " 前寄回"]
    y = form.small(y + 1, [*note, "。"])
    form.watermark(part, y, mark)
    return y


def write_letter(data: LetterData, out: Path) -> None:
    """Write the letter as a PDF at ``out``: complete or not at all (a temporary file beside
    it, then a rename), readable by its owner only."""
    font = find_cjk_font()
    pdf = _render(data, font)
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)  # 0600
    try:
        try:
            view = memoryview(pdf)
            while view:
                view = view[os.write(fd, view):]
            fsync_fd(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
