"""The workflows (store/workflows.py): transfer of membership (M-1.4), probation (M-2.2c),
appraisal reaching the home side (M-4.2) and the approval of mobile-member organizations (M-4.1).
Every illegal step is refused when it is typed, and nothing of a refused step is written."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import TEST_KDF, Store
from store.errors import ValidationError
from store.register import flow_out, open_flow
from store.schema import CHOICES, TRANSFER_STEPS
from store.workflows import (
    WorkflowError,
    acknowledge_appraisals,
    cancel_transfer,
    decide_probation,
    draft_transfer,
    issue_transfer,
    open_review,
    receive_transfer,
    return_transfer,
)
from tests.conftest import PASSPHRASE


class County:
    """A county, a town committee that may approve probationary members, and two branches."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.county = store.put("org", {"name": "光山县委", "kind": "county"})
        self.town = store.put("org", {"name": "城关镇党委", "kind": "committee",
                                      "parent_id": self.county, "can_approve_probationary": True})
        self.a = store.put("org", {"name": "城关村党支部", "kind": "branch", "parent_id": self.town})
        self.b = store.put("org", {"name": "东关村党支部", "kind": "branch", "parent_id": self.town})

    def member(self, **values: Any) -> str:
        return self.store.put("member", {"name": "张三", "home_org_id": self.a, "standing": "full",
                                         "joined_on": "2010-07-01", **values})


@pytest.fixture
def c(tmp_path: Path) -> Iterator[County]:
    store, _ = Store.create(tmp_path / "s", PASSPHRASE, kdf=TEST_KDF)
    with store:
        yield County(store)


def rules(exc: pytest.ExceptionInfo[ValidationError]) -> set[tuple[str, str]]:
    return {(i.field, i.rule) for i in exc.value.issues}


# -- M-1.4 transfer of membership ------------------------------------------------------------------

def test_m1_4_issuing_fills_in_the_letter_and_fixes_it(c: County) -> None:
    member_id = c.member()
    transfer = draft_transfer(c.store, member_id, {"to_org_id": c.b})
    doc = c.store.get(transfer)
    assert (doc["status"], doc["from_org_id"]) == ("draft", c.a)
    c.store.put("transfer", {"to_org_id": c.county}, transfer)  # a draft may change
    with pytest.raises(ValidationError) as exc:  # the dues month is the person's to give
        issue_transfer(c.store, transfer, {"issued_on": "2026-01-31"})
    assert ("dues_paid_until", "issued_needs") in rules(exc)
    assert c.store.get(transfer)["status"] == "draft"
    issue_transfer(c.store, transfer, {"issued_on": "2026-01-31", "dues_paid_until": "2026-01"})
    doc = c.store.get(transfer)
    assert (doc["status"], doc["receipt_due_on"], doc["valid_days"], doc["letter_no"]) == (
        "issued", "2026-02-28", 30, "2026-001")  # one month on, the month's last day
    with pytest.raises(ValidationError) as exc:
        c.store.put("transfer", {"to_org_id": c.b}, transfer)
    assert rules(exc) == {("to_org_id", "letter_fixed")}
    second = draft_transfer(c.store, c.member(name="李四"), {"to_org_text": "深圳市某党委"})
    issue_transfer(c.store, second, {"issued_on": "2026-03-01", "dues_paid_until": "2026-02"})
    assert c.store.get(second)["letter_no"] == "2026-002"


def test_m1_4_only_the_declared_steps_are_taken(c: County) -> None:
    states = [v for v, _, _ in CHOICES["transfer_status"]]
    full = {"letter_no": "X-1", "issued_on": "2026-01-05", "dues_paid_until": "2026-01",
            "valid_days": 30, "receipt_due_on": "2026-02-05", "received_on": "2026-01-20"}
    tried = 0
    for old, new in itertools.product(states, states):
        if old == new:
            continue
        member_id = c.member(name="王五", archived=None)
        path = {"received": ["issued"], "returned": ["issued"], "cancelled": ["draft"]}
        transfer = c.store.put("transfer", {"member_id": member_id, "to_org_text": "外县党委",
                                            "status": (path.get(old) or [old])[0], **full})
        if old in path:
            c.store.put("transfer", {"status": old}, transfer)
        tried += 1
        if (old, new) in TRANSFER_STEPS:
            c.store.put("transfer", {"status": new}, transfer)
            assert c.store.get(transfer)["status"] == new
        else:
            with pytest.raises(ValidationError) as exc:
                c.store.put("transfer", {"status": new}, transfer)
            assert rules(exc) == {("status", "step")}
            assert c.store.get(transfer)["status"] == old
    assert tried == 20
    with pytest.raises(ValidationError) as exc:  # a receipt is never typed in at creation
        c.store.put("transfer", {"member_id": c.member(), "to_org_text": "外县党委",
                                 "status": "received", **full})
    assert ("status", "step") in rules(exc)


def test_m1_4_the_receipt_hands_the_member_over_in_one_commit(c: County) -> None:
    member_id = c.member()
    flow_id = flow_out(c.store, member_id, {"left_on": "2024-03-01", "reason": "work",
                                            "host_org_id": c.b})
    c.store.set_meta(own_org_id=c.a)
    transfer = draft_transfer(c.store, member_id, {"to_org_id": c.b})
    issue_transfer(c.store, transfer, {"issued_on": "2026-01-05", "dues_paid_until": "2026-01"})
    with pytest.raises(WorkflowError):
        draft_transfer(c.store, member_id, {"to_org_id": c.b})  # one transfer at a time
    seq = c.store.meta["dev_seq"]
    receive_transfer(c.store, transfer, "2026-01-20")
    assert c.store.meta["dev_seq"] == seq + 3  # transfer, flow and member: one frame
    flow = c.store.get(flow_id)
    assert (flow["status"], flow["ended_on"], flow["end_reason"]) == (
        "ended", "2026-01-20", "transferred")
    member = c.store.get(member_id)
    assert member["home_org_id"] == c.b and not member.get("archived")
    assert open_flow(c.store, member_id) is None


def test_m1_4_a_transfer_out_of_the_system_archives_the_member(c: County) -> None:
    member_id = c.member()
    transfer = draft_transfer(c.store, member_id, {"to_org_text": "深圳市南山区某党委"})
    issue_transfer(c.store, transfer, {"issued_on": "2026-01-05", "dues_paid_until": "2026-01"})
    receive_transfer(c.store, transfer)
    assert c.store.get(member_id)["archived"] == "transferred"
    assert c.store.get(transfer)["received_on"] == dt.date.today().isoformat()


def test_m1_4_returned_and_cancelled_letters_leave_the_member_alone(c: County) -> None:
    member_id = c.member()
    first = draft_transfer(c.store, member_id, {"to_org_id": c.b})
    cancel_transfer(c.store, first)
    second = draft_transfer(c.store, member_id, {"to_org_id": c.b})
    issue_transfer(c.store, second, {"issued_on": "2026-01-05", "dues_paid_until": "2026-01"})
    return_transfer(c.store, second)
    member = c.store.get(member_id)
    assert member["home_org_id"] == c.a and not member.get("archived")
    with pytest.raises(ValidationError) as exc:
        receive_transfer(c.store, second)
    assert rules(exc) == {("status", "step")}


def test_m1_4_a_letter_leaves_from_the_members_home(c: County) -> None:
    member_id = c.member()
    with pytest.raises(ValidationError) as exc:
        c.store.put("transfer", {"member_id": member_id, "from_org_id": c.b, "to_org_id": c.b})
    assert rules(exc) >= {("from_org_id", "transfer_from_home"), ("to_org_id", "transfer_same_org")}
    with pytest.raises(ValidationError) as exc:
        c.store.put("transfer", {"member_id": member_id, "to_org_id": c.b, "valid_days": 0})
    assert rules(exc) == {("valid_days", "valid_days")}


# -- M-2.2c probation ------------------------------------------------------------------------------

def probationer(c: County) -> str:
    return c.member(standing="probationary", joined_on="2025-07-15",
                    probation_ends_on="2026-07-15")


def test_m2_2c_a_review_is_due_when_probation_ends_and_converts_the_member(c: County) -> None:
    member_id = probationer(c)
    review = open_review(c.store, member_id)
    assert c.store.get(review)["due_on"] == "2026-07-15"
    with pytest.raises(WorkflowError):
        open_review(c.store, member_id)
    with pytest.raises(ValidationError) as exc:
        decide_probation(c.store, review, {"decision": "converted"})
    assert rules(exc) == {("meeting_on", "decision_needs"), ("approved_by_org_id", "decision_needs"),
                          ("approved_on", "decision_needs")}
    with pytest.raises(ValidationError) as exc:  # a branch may not approve
        decide_probation(c.store, review, {"decision": "converted", "meeting_on": "2026-07-15",
                                           "approved_by_org_id": c.a, "approved_on": "2026-07-20"})
    assert rules(exc) == {("approved_by_org_id", "approver_rights")}
    assert c.store.get(member_id)["standing"] == "probationary"
    decide_probation(c.store, review, {"decision": "converted", "meeting_on": "2026-07-15",
                                       "approved_by_org_id": c.town, "approved_on": "2026-07-20"})
    assert c.store.get(member_id)["standing"] == "full"
    with pytest.raises(ValidationError) as exc:  # a decision is final
        decide_probation(c.store, review, {"decision": "cancelled"})
    assert ("decision", "step") in rules(exc)
    with pytest.raises(ValidationError) as exc:  # a full member has no probation to review
        open_review(c.store, member_id)
    assert rules(exc) == {("member_id", "not_probationary")}


def test_m2_2c_probation_is_extended_by_a_year_at_most(c: County) -> None:
    member_id = probationer(c)
    review = open_review(c.store, member_id)
    decided = {"decision": "extended", "meeting_on": "2026-07-15", "approved_by_org_id": c.town,
               "approved_on": "2026-07-20"}
    for too_late in ("2027-07-16", "2026-07-15"):
        with pytest.raises(ValidationError) as exc:
            decide_probation(c.store, review, {**decided, "extended_until": too_late})
        assert rules(exc) == {("extended_until", "extension_limit")}
    decide_probation(c.store, review, {**decided, "extended_until": "2027-07-15"})
    assert c.store.get(member_id)["probation_ends_on"] == "2027-07-15"
    assert c.store.get(member_id)["standing"] == "probationary"
    assert c.store.get(open_review(c.store, member_id))["due_on"] == "2027-07-15"


def test_m2_2c_a_cancelled_probation_archives_the_member(c: County) -> None:
    member_id = probationer(c)
    review = open_review(c.store, member_id)
    decide_probation(c.store, review, {"decision": "cancelled", "meeting_on": "2026-07-15",
                                       "approved_by_org_id": c.town, "approved_on": "2026-07-20"})
    assert c.store.get(member_id)["archived"] == "disqualified"


# -- M-4.2 appraisal results reach the home side -------------------------------------------------

def test_m4_2_an_appraisal_by_the_host_is_noted_when_it_reaches_home(c: County) -> None:
    member_id = c.member()
    flow_out(c.store, member_id, {"left_on": "2025-03-01", "reason": "work", "host_org_id": c.b})
    by_host = c.store.put("appraisal", {"member_id": member_id, "year": 2025, "by_org_id": c.b,
                                        "result": "qualified"})
    at_home = c.store.put("appraisal", {"member_id": c.member(name="李四"), "year": 2025,
                                        "by_org_id": c.a, "result": "excellent"})
    c.store.set_meta(own_org_id=c.b)
    assert acknowledge_appraisals(c.store) == 0  # the host is not the member's home
    c.store.set_meta(own_org_id=c.a)
    assert acknowledge_appraisals(c.store, dt.date(2026, 1, 10)) == 1
    assert c.store.get(by_host)["notified_home_on"] == "2026-01-10"
    assert not c.store.get(at_home).get("notified_home_on")  # its own: nothing to be told
    assert acknowledge_appraisals(c.store) == 0


# -- M-4.1 mobile-member organizations -----------------------------------------------------------

def test_m4_1_a_mobile_member_organization_needs_county_approval(c: County) -> None:
    base = {"name": "驻深圳流动党员党支部", "kind": "mobile_branch", "parent_id": c.town}
    with pytest.raises(ValidationError) as exc:
        c.store.put("org", base)
    assert rules(exc) == {("approved_by_org_id", "approval_needed"),
                          ("approved_on", "approval_needed")}
    with pytest.raises(ValidationError) as exc:  # a town committee is below county level
        c.store.put("org", {**base, "approved_by_org_id": c.town, "approved_on": "2026-01-05"})
    assert rules(exc) == {("approved_by_org_id", "approver_level")}
    org = c.store.put("org", {**base, "approved_by_org_id": c.county, "approved_on": "2026-01-05"})
    assert c.store.get(org)["kind"] == "mobile_branch"


def test_m4_2_applications_move_forward_one_stage_at_a_time(c: County) -> None:
    app = c.store.put("application", {"org_id": c.b, "person_name": "赵六",
                                      "received_on": "2026-01-05", "stage": "applicant"})
    with pytest.raises(ValidationError) as exc:
        c.store.put("application", {"stage": "candidate"}, app)
    assert rules(exc) == {("stage", "step")}
    c.store.put("application", {"stage": "activist"}, app)
    c.store.put("application", {"stage": "candidate"}, app)
    with pytest.raises(ValidationError):
        c.store.put("application", {"stage": "applicant"}, app)
    assert c.store.get(app)["stage"] == "candidate"



def test_m1_4_a_batch_is_judged_as_the_one_op_the_server_receives(c: County) -> None:
    """Issued and received in one batch reach the server as one op creating a received
    transfer, which it refuses: so is it here, when typed."""
    member_id = c.member()
    with pytest.raises(ValidationError) as exc, c.store.batch() as b:
        transfer = b.put("transfer", {"member_id": member_id, "to_org_text": "外县党委",
                                      "status": "issued", "dues_paid_until": "2026-01"})
        b.put("transfer", {"status": "received"}, transfer)
    assert rules(exc) == {("status", "step")}
    assert list(c.store.live("transfer")) == []
