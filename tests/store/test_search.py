"""Finding members as you type (DESIGN §4, §5): by name, full pinyin, pinyin initials, phone and
ID-number suffix, with surnames read as surnames.

The keys are built by ``store/search.py`` when a member is written and kept in the snapshot;
these tests go through ``Store.search_members`` on a real encrypted store, so they also cover
keys rebuilt from the journal and keys read back from a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import TEST_KDF, Store
from store.search import filter_ids, matches, member_keys, name_readings
from tests.conftest import make_id_number

PASSPHRASE = "passphrase-123"
ORG = {"name": "城关村党支部", "kind": "branch"}

ZHANG_SAN_ID = "11010519491231002X"  # GB 11643's own example
LI_SI_ID = make_id_number("330106", "19850315", 123)

MEMBERS: list[dict[str, Any]] = [
    {"name": "张三", "phone": "13912345678", "id_number": ZHANG_SAN_ID},
    {"name": "张伟", "phone": "13800138000"},
    {"name": "李四", "id_number": LI_SI_ID},
    {"name": "单田芳"},
    {"name": "曾国藩"},
    {"name": "解缙"},
    {"name": "区志坚"},
    {"name": "仇英"},
    {"name": "朴正浩"},
    {"name": "覃雪梅"},
    {"name": "翟志刚"},
    {"name": "欧阳修"},
    {"name": "尉迟恭"},
    {"name": "长孙无忌"},
    {"name": "吕布"},
]


def create(path: Path) -> Store:
    s, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF, org=dict(ORG))
    return s


def add(s: Store, **values: Any) -> str:
    return s.put("member", {"home_org_id": s.meta["own_org_id"], **values})


def names(s: Store, query: str) -> set[str]:
    return {m["name"] for m in s.search_members(query)}


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store with every member above, shared by the read-only tests."""
    s = create(tmp_path_factory.mktemp("search") / "s")
    with s.batch() as b:
        for values in MEMBERS:
            b.put("member", {"home_org_id": s.meta["own_org_id"], **values})
    yield s
    s.close()


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Store]:
    s = create(tmp_path / "s")
    yield s
    s.close()


# -- name, pinyin, initials -------------------------------------------------------------------

@pytest.mark.parametrize("query", ["zs", "zhangsan", "zhang", "张三", "张", "ZS", "ZhangSan", "san"])
def test_zhang_san_found_by_name_pinyin_and_initials(people: Store, query: str) -> None:
    """DESIGN §4: `zs` finds 张三, as do the full pinyin and the characters."""
    assert "张三" in names(people, query)


def test_exact_queries_find_only_that_member(people: Store) -> None:
    assert names(people, "zhangsan") == {"张三"}
    assert names(people, "张三") == {"张三"}
    assert names(people, "张") == {"张三", "张伟"}
    assert names(people, "zhangwei") == {"张伟"}


def test_nothing_matches_nonsense(people: Store) -> None:
    assert names(people, "qwxyz") == set()
    assert names(people, "王") == set()


@pytest.mark.parametrize(("name", "query"), [
    ("单田芳", "shantianfang"), ("单田芳", "stf"), ("单田芳", "shan"),
    ("曾国藩", "zengguofan"), ("曾国藩", "zgf"),
    ("解缙", "xiejin"), ("解缙", "xj"),
    ("区志坚", "ouzhijian"), ("区志坚", "ou"), ("区志坚", "ozj"),
    ("仇英", "qiuying"), ("仇英", "qiu"),
    ("朴正浩", "piaozhenghao"), ("朴正浩", "piao"),
    ("覃雪梅", "qinxuemei"), ("覃雪梅", "qin"),
    ("翟志刚", "zhaizhigang"), ("翟志刚", "zhai"), ("翟志刚", "zzg"),
])
def test_polyphonic_surname_read_as_surname(people: Store, name: str, query: str) -> None:
    """A surname has its own reading: 单 shàn, 曾 zēng, 解 xiè, 区 ōu, 仇 qiú, 朴 piáo, 覃 qín,
    翟 zhái."""
    assert name in names(people, query)


@pytest.mark.parametrize(("name", "query"), [
    ("单田芳", "dantianfang"), ("单田芳", "dtf"), ("曾国藩", "cgf"), ("解缙", "jiejin"),
    ("区志坚", "quzhijian"), ("翟志刚", "dizhigang"),
])
def test_polyphonic_surname_also_found_by_everyday_reading(people: Store, name: str,
                                                           query: str) -> None:
    """People who do not know the surname reading type the everyday one."""
    assert name in names(people, query)


@pytest.mark.parametrize(("name", "query"), [
    ("欧阳修", "ouyang"), ("欧阳修", "ouyangxiu"), ("欧阳修", "oyx"),
    ("尉迟恭", "yuchi"), ("尉迟恭", "yuchigong"), ("尉迟恭", "ycg"),
    ("长孙无忌", "zhangsun"), ("长孙无忌", "zhangsunwuji"), ("长孙无忌", "zswj"),
])
def test_compound_surnames(people: Store, name: str, query: str) -> None:
    """Compound surnames are matched before single characters (尉迟 yù chí, not wèi)."""
    assert name in names(people, query)


def test_surname_reading_comes_first() -> None:
    assert name_readings("单田芳")[0] == ["shan", "tian", "fang"]
    assert ["dan", "tian", "fang"] in name_readings("单田芳")
    assert name_readings("尉迟恭")[0] == ["yu", "chi", "gong"]
    assert name_readings("张三") == [["zhang", "san"]]
    assert name_readings("  ") == []


@pytest.mark.parametrize("query", ["lv", "lu", "lvbu", "lubu", "lb"])
def test_lv_found_as_lv_and_lu(people: Store, query: str) -> None:
    """ü is typed v on Chinese keyboards and u elsewhere."""
    assert "吕布" in names(people, query)


def test_lv_found_as_lu_with_umlaut(people: Store) -> None:
    """search.py's ``_variants`` promises that lü finds 吕 as well (macOS and phone input
    methods type ü)."""
    assert "吕布" in names(people, "lü")


def test_dan_surname_before_yu_given_name(reg: Store) -> None:
    """单 followed by a given name starting with 于 is the surname 单 shàn, not the ancient
    compound title 单于 chányú: 单于飞 must be found by `shanyufei` and `syf` like 单田芳."""
    add(reg, name="单于飞")
    assert names(reg, "shanyufei") == {"单于飞"}
    assert names(reg, "syf") == {"单于飞"}


# -- phone and ID number ----------------------------------------------------------------------

@pytest.mark.parametrize("query", ["13912345678", "1391234", "12345678", "5678", "1234"])
def test_phone_substring(people: Store, query: str) -> None:
    assert names(people, query) == {"张三"}


def test_other_phone_substring(people: Store) -> None:
    assert names(people, "138001") == {"张伟"}


@pytest.mark.parametrize("query", ["002X", "002x", "2X", "1002x", "31002X"])
def test_id_number_suffix_with_x_case_insensitive(people: Store, query: str) -> None:
    """DESIGN §4: find a member by the end of the ID number, as read off a card."""
    assert names(people, query) == {"张三"}


def test_id_number_suffix_of_digits(people: Store) -> None:
    assert names(people, LI_SI_ID[-4:]) == {"李四"}
    assert names(people, LI_SI_ID[-6:]) == {"李四"}


@pytest.mark.parametrize("fragment", ["19491231", "1949", "110105", "3100", "1231", "491231002"])
def test_id_number_middle_fragment_does_not_match(people: Store, fragment: str) -> None:
    """A fragment from the middle of the number (birth date, region) is not a search key: "1949"
    would otherwise find everyone born that year."""
    assert "张三" not in names(people, fragment)


def test_li_si_birth_year_does_not_match(people: Store) -> None:
    assert "李四" not in names(people, "1985")
    assert "李四" not in names(people, "330106")


@pytest.mark.parametrize("query", [ZHANG_SAN_ID, ZHANG_SAN_ID.lower(), ZHANG_SAN_ID[-8:]])
def test_whole_id_number_or_long_suffix_finds_member(people: Store, query: str) -> None:
    """The whole number is a suffix of itself: typing or scanning a card's number finds the
    member (``liudong member show 11010519491231002X`` resolves through this search)."""
    assert names(people, query) == {"张三"}


# -- combining, limits ------------------------------------------------------------------------

def test_multi_word_queries_and_together(people: Store) -> None:
    assert names(people, "zhang 139") == {"张三"}
    assert names(people, "zhang 138") == {"张伟"}
    assert names(people, "zs 138") == set()
    assert names(people, "张 002x") == {"张三"}
    assert names(people, "zhang wei") == {"张伟"}
    assert names(people, "  zhang   san  ") == {"张三"}


def test_empty_query_lists_every_live_member(people: Store) -> None:
    assert names(people, "") == {m["name"] for m in MEMBERS}
    assert names(people, "   ") == {m["name"] for m in MEMBERS}


def test_limit(people: Store) -> None:
    assert len(people.search_members("zhang")) >= 2
    assert len(people.search_members("zhang", limit=1)) == 1


def test_results_are_member_records(people: Store) -> None:
    [found] = people.search_members("zhangsan")
    assert found["type"] == "member"
    assert found["phone"] == "13912345678"
    assert people.get(found["id"]) == found


# -- keys follow the register -----------------------------------------------------------------

def test_deleted_member_not_found(reg: Store) -> None:
    mid = add(reg, name="张三", phone="13912345678", id_number=ZHANG_SAN_ID)
    add(reg, name="张伟")
    assert names(reg, "zs") == {"张三"}
    reg.delete(mid)
    for query in ("zs", "zhangsan", "张三", "1391234", "002x", ""):
        assert "张三" not in names(reg, query), query
    assert names(reg, "zhang") == {"张伟"}


def test_renamed_member_found_by_new_pinyin_only(reg: Store) -> None:
    mid = add(reg, name="张三")
    reg.put("member", {"name": "单田芳"}, mid)
    assert names(reg, "zhangsan") == set()
    assert names(reg, "zs") == set()
    assert names(reg, "张三") == set()
    assert names(reg, "shantianfang") == {"单田芳"}
    assert names(reg, "stf") == {"单田芳"}


def test_changed_phone_and_id_number_follow(reg: Store) -> None:
    mid = add(reg, name="张三", phone="13912345678", id_number=ZHANG_SAN_ID)
    reg.put("member", {"phone": "13800138000", "id_number": LI_SI_ID}, mid)
    assert names(reg, "1391234") == set()
    assert names(reg, "002x") == set()
    assert names(reg, "138001") == {"张三"}
    assert names(reg, LI_SI_ID[-4:]) == {"张三"}
    reg.put("member", {"phone": None}, mid)
    assert names(reg, "138001") == set()


def test_other_edits_keep_the_keys(reg: Store) -> None:
    mid = add(reg, name="张三")
    reg.put("member", {"notes": "在杭州务工"}, mid)
    assert names(reg, "zs") == {"张三"}


def _check_after_reopen(s: Store) -> None:
    assert names(s, "zs") == {"张三"}
    assert names(s, "stf") == {"单田芳"}
    assert names(s, "002x") == {"张三"}
    assert names(s, "1391234") == {"张三"}
    assert names(s, "zhangwei") == set()  # deleted
    assert names(s, "lisi") == set()  # renamed
    assert names(s, "wangwu") == {"王五"}


def _populate(s: Store) -> None:
    add(s, name="张三", phone="13912345678", id_number=ZHANG_SAN_ID)
    add(s, name="单田芳")
    s.delete(add(s, name="张伟"))
    s.put("member", {"name": "王五"}, add(s, name="李四"))


def test_search_after_reopen_keys_from_journal(tmp_path: Path) -> None:
    path = tmp_path / "s"
    s = create(path)
    _populate(s)
    gen = s.gen
    s.close()
    with Store.open(path, PASSPHRASE) as again:
        assert again.gen == gen  # nothing compacted: every member came back from the journal
        _check_after_reopen(again)


def test_search_after_reopen_keys_from_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "s"
    s = create(path)
    _populate(s)
    s.compact()
    keys = dict(s.state.search)
    s.close()
    with Store.open(path, PASSPHRASE) as again:
        assert again.state.search == keys
        _check_after_reopen(again)
        # and edits after the reopen still update them
        [wang] = again.search_members("wangwu")
        again.put("member", {"name": "赵六"}, wang["id"])
        assert names(again, "wangwu") == set()
        assert names(again, "zl") == {"赵六"}


# -- the key functions on their own -----------------------------------------------------------

def test_member_keys_hold_name_pinyin_initials_phone_and_id_suffix() -> None:
    keys = member_keys({"name": "张三", "phone": "13912345678", "id_number": ZHANG_SAN_ID})
    parts = keys.split("\0")
    assert {"张三", "zhangsan", "zs", "13912345678"} <= set(parts)
    assert not matches(keys, "19491231")  # a birth date inside the ID number does not match
    assert matches(keys, ZHANG_SAN_ID.lower()) and matches(keys, "1231002X")
    assert member_keys({}) == ""


def test_matches_and_filter_ids_agree() -> None:
    index = {
        "a": member_keys({"name": "张三", "phone": "13912345678", "id_number": ZHANG_SAN_ID}),
        "b": member_keys({"name": "张伟", "phone": "13800138000"}),
    }
    for query in ("zs", "zhang", "zhang 139", "002x", "1949", "138", "张", "x", ""):
        expected = [i for i in index if matches(index[i], query)]
        assert filter_ids(index, query) == expected, query
    assert filter_ids(index, "zhang", ids=["b", "a"]) == ["b", "a"]
    assert filter_ids(index, "", ids=["b"]) == ["b"]
