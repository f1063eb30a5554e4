"""The register's model on one laptop (DESIGN §2.2): one person, one record; mobility derived
from the flow and the organization looking; flows that cannot overlap; dates that cannot be;
names as people write them; what the ID number already says. Each test failed before the
register knew the rule."""

from __future__ import annotations

import pytest

from store import Store, ValidationError
from store.register import (
    FlowStateError,
    add_member,
    end_flow,
    flow_in,
    flow_out,
    log_contact,
    member_mobility,
    report_in,
)
from tests.conftest import make_id_number

ID = make_id_number("411522", "19880512", 123)  # a man (odd sequence), born 1988-05-12


def rule_of(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    return exc.value.field, exc.value.rule


# -- one person, one record ------------------------------------------------------------------

def test_a_second_member_with_the_same_id_number_is_refused_naming_the_first(store: Store) -> None:
    first = add_member(store, {"name": "张三", "id_number": ID})
    seq = store.meta["dev_seq"]
    for typed in (ID, ID.lower(), f" {ID[:6]} {ID[6:]} "):  # however it is typed
        with pytest.raises(ValidationError) as refused:
            add_member(store, {"name": "李四", "id_number": typed})
        assert rule_of(refused) == ("id_number", "id_duplicate")
        assert "张三" in refused.value.zh and first[-8:] in refused.value.zh
    assert store.meta["dev_seq"] == seq  # nothing written
    other = add_member(store, {"name": "李四"})
    with pytest.raises(ValidationError):
        store.put("member", {"id_number": ID}, other)  # nor by an edit
    store.delete(first)
    store.put("member", {"id_number": ID}, other)  # a deleted member frees the number


def test_the_same_id_number_twice_in_one_batch_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError), store.batch() as b:
        b.put("member", {"name": "张三", "id_number": ID, "home_org_id": store.meta["own_org_id"]})
        b.put("member", {"name": "张三", "id_number": ID, "home_org_id": store.meta["own_org_id"]})
    assert list(store.live("member")) == []


@pytest.mark.parametrize(("typed", "stored"), [
    ("王 小明", "王小明"), ("王　小明", "王小明"), (" 王  小 明 ", "王小明"),
    ("阿依古丽·买买提", "阿依古丽·买买提"), ("Aili  Maimaiti", "Aili Maimaiti"),
    ("王 Lily", "王Lily"),
])
def test_names_are_stored_as_people_write_them(store: Store, typed: str, stored: str) -> None:
    member_id = add_member(store, {"name": typed})
    assert store.get(member_id)["name"] == stored
    assert member_id in {m["id"] for m in store.search_members(stored)}


def test_wang_xiaoming_typed_with_a_space_is_found_as_one_name(store: Store) -> None:
    member_id = add_member(store, {"name": "王 小明"})
    for query in ("王小明", "wangxiaoming", "wxm"):
        assert [m["id"] for m in store.search_members(query)] == [member_id], query


def test_birth_date_and_gender_come_from_the_id_number(store: Store) -> None:
    member_id = add_member(store, {"name": "张三", "id_number": ID})
    doc = store.get(member_id)
    assert (doc["birth_date"], doc["gender"]) == ("1988-05-12", "male")
    woman = make_id_number("411522", "19920903", 124)
    store.put("member", {"id_number": woman}, member_id)  # a corrected number: they follow it
    doc = store.get(member_id)
    assert (doc["birth_date"], doc["gender"]) == ("1992-09-03", "female")
    # what is typed is kept, and checked against the number
    with pytest.raises(ValidationError) as refused:
        add_member(store, {"name": "李四", "id_number": ID, "gender": "female"})
    assert ("gender", "id_gender_mismatch") in {(i.field, i.rule) for i in refused.value.issues}


# -- each side sees its own side ---------------------------------------------------------------

def test_mobility_is_derived_from_the_open_flow_not_typed(store: Store) -> None:
    member_id = add_member(store, {"name": "张三"})
    assert member_mobility(store, store.get(member_id)) == "none"
    flow_id = flow_out(store, member_id, {"left_on": "2026-09-01", "reason": "work"})
    assert member_mobility(store, store.get(member_id)) == "outflow"
    with pytest.raises(ValidationError) as refused:
        store.put("member", {"mobility": "none"}, member_id)  # not a field anyone types
    assert refused.value.rule == "unknown_field"
    end_flow(store, flow_id, "2026-11-01", "returned")
    assert member_mobility(store, store.get(member_id)) == "none"
    arrived, _ = flow_in(store, {"name": "王芳", "external_home_org": "某县某村党支部"},
                         {"left_on": "2026-10-01", "reason": "work"})
    assert member_mobility(store, store.get(arrived)) == "inflow"


# -- flows that cannot overlap; dates that cannot be ---------------------------------------------

def test_a_member_has_one_open_flow_and_flows_do_not_overlap(store: Store) -> None:
    member_id = add_member(store, {"name": "张三"})
    first = flow_out(store, member_id, {"left_on": "2026-03-01", "reason": "work"})
    with pytest.raises(FlowStateError):
        flow_out(store, member_id, {"left_on": "2026-04-01", "reason": "work"})
    with pytest.raises(ValidationError) as refused:  # not by a raw put either
        store.put("flow", {"member_id": member_id, "left_on": "2026-04-01", "reason": "work",
                           "status": "pending_report"})
    assert rule_of(refused) == ("left_on", "flow_overlap")
    end_flow(store, first, "2026-06-01", "returned")
    with pytest.raises(ValidationError) as refused:  # left again before it came back
        flow_out(store, member_id, {"left_on": "2026-05-20", "reason": "work"})
    assert rule_of(refused) == ("left_on", "flow_overlap")
    flow_out(store, member_id, {"left_on": "2026-06-01", "reason": "work"})  # the same day


def test_dates_that_cannot_be(store: Store) -> None:
    with pytest.raises(ValidationError) as refused:
        add_member(store, {"name": "张三", "joined_on": "1921-06-30"})
    assert rule_of(refused) == ("joined_on", "before_founding")
    add_member(store, {"name": "李四", "joined_on": "1921-07-01"})
    member_id = add_member(store, {"name": "张三", "id_number": ID})  # born 1988-05-12
    for values, field in (({"left_on": "1988-05-11", "reason": "work"}, "left_on"),):
        with pytest.raises(ValidationError) as refused:
            flow_out(store, member_id, values)
        assert rule_of(refused) == (field, "before_birth")
    with pytest.raises(ValidationError) as refused:
        log_contact(store, member_id, {"on": "1980-01-01", "channel": "phone", "reached": True})
    assert rule_of(refused) == ("on", "before_birth")
    flow_id = flow_out(store, member_id, {"left_on": "2026-09-01", "reason": "work"})
    with pytest.raises(ValidationError) as refused:  # reported in before leaving
        report_in(store, flow_id, "2026-08-31")
    assert rule_of(refused) == ("reported_on", "before")
    report_in(store, flow_id, "2026-09-01")


# -- orgs by name --------------------------------------------------------

def test_orgs_are_named_by_name_part_of_one_or_id_tail(store: Store) -> None:
    from store.errors import Ambiguous, NotFound
    from store.orgs import resolve_org

    orgs = [{"id": "01J0000000000000000000AAAA", "name": "城关村党支部"},
            {"id": "01J0000000000000000000BBBB", "name": "东关村党支部"},
            {"id": "01J0000000000000000000CCCC", "name": "城关镇党委"}]
    assert resolve_org(orgs, "东关村党支部") == orgs[1]["id"]
    assert resolve_org(orgs, "东关") == orgs[1]["id"]
    assert resolve_org(orgs, "0000bbbb") == orgs[1]["id"]
    assert resolve_org(orgs, orgs[2]["id"]) == orgs[2]["id"]
    with pytest.raises(Ambiguous) as several:
        resolve_org(orgs, "城关")
    assert "城关村党支部" in several.value.zh and "城关镇党委" in several.value.zh
    with pytest.raises(NotFound):
        resolve_org(orgs, "西关")
