"""Scope and ownership are declared in the schema, beside the fields (DESIGN §2.2, §3.3): every
record type says how it reaches devices and who owns each field, and the server and the device
read nothing else. A type without a declaration cannot exist."""

from __future__ import annotations

import pytest

from store.schema import HOST_VIEWS, SCOPE_KINDS, TYPES, Field, RecordType, Scope

# The anchors a write may change, each through the workflow of the side that owns it: the home
# hands a member over, the home sets a flow's host, the issuer adds targets to its task.
MOVABLE_ANCHORS = {("member", "home_org_id"), ("flow", "host_org_id"),
                   ("task", "target_org_ids")}


def test_a_record_type_cannot_be_declared_without_its_scope() -> None:
    with pytest.raises(TypeError):
        RecordType("new_kind", "新", "new", (Field("name", "text", "名称", "name"),))  # type: ignore[call-arg]
    with pytest.raises(AssertionError):
        Scope("somewhere")


@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_type_declares_scope_anchors_and_owners(name: str) -> None:
    rtype = TYPES[name]
    scope = rtype.scope
    assert scope.kind in SCOPE_KINDS and scope.host in HOST_VIEWS
    assert scope.delete in ("home", "writer")
    for anchor in (*scope.anchors, *scope.people):
        assert anchor in rtype.by_name, f"{name}: anchor {anchor} is not a field"
        f = rtype[anchor]
        assert f.fixed or (name, anchor) in MOVABLE_ANCHORS or anchor in scope.people, (
            f"{name}.{anchor} decides scope: it must be fixed, or moved only by its owner")
    if scope.kind == "member_record":
        assert scope.anchors[0] == "member_id" and rtype["member_id"].fixed
        assert rtype["member_id"].ref == "member"
    if scope.host:
        assert scope.kind == "member_record"
    for f in rtype.fields:
        assert f.owner in ("home", "host", "writer", "any", "server"), f
        assert not f.host_values or f.owner == "home"
        assert not f.hands_over or (name, f.name) in MOVABLE_ANCHORS


def test_what_the_host_holds_of_a_member_is_declared_per_type() -> None:
    """The host holds the open flow and what its side records; it writes into a probation
    review and a transfer, so it holds those while it hosts the member (DESIGN §3.3)."""
    views = {name: t.scope.host for name, t in TYPES.items() if t.scope.kind == "member_record"}
    assert views["flow"] == "flow"
    assert views["probation_review"] == views["transfer"] == "open"
    assert {n for n, v in views.items() if v == "written"} == {
        "contact", "study", "vanguard", "care", "appraisal", "commendation"}
    for name, view in views.items():
        host_fields = [f.name for f in TYPES[name].fields if f.owner == "host"]
        assert not host_fields or view in ("flow", "open"), (name, host_fields)
