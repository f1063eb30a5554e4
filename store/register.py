"""What a branch worker does with the register, as operations on the store.

Each function is one user action: it validates everything first and commits one batch, so an
action either happens whole or not at all. Policy ids (M-x.y) refer to domain/MANDATE.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import Ambiguous, Forbidden, LiudongError, NotFound
from .ids import ULID_RE
from .schema import TYPES
from .scope import mobility
from .store import Store
from .validate import coerce


class FlowStateError(LiudongError):
    exit_code = 2


def resolve_member(store: Store, key: str) -> dict[str, Any]:
    """A member by id, by the end of an id (as lists show it), or by a search that finds one."""
    key = key.strip()
    doc = store.get(key.upper()) if ULID_RE.fullmatch(key.upper()) else None
    if doc is not None and doc["type"] == "member":
        return doc
    members = list(store.live("member"))
    if len(key) >= 6 and key.isalnum():
        by_suffix = [m for m in members if m["id"].endswith(key.upper())]
        if len(by_suffix) == 1:
            return by_suffix[0]
    found = store.search_members(key)
    if not found:
        raise NotFound("党员", "member", key)
    if len(found) > 1:
        exact = [m for m in found if m.get("name") == key]
        if len(exact) == 1:
            return exact[0]
        raise Ambiguous(key, [f"{m['name']}({m['id'][-8:]})" for m in found])
    return found[0]


def open_flow(store: Store, member_id: str) -> dict[str, Any] | None:
    """The member's flow that has not ended, if any (a member has at most one; should there be
    several, the one left latest). From the store's index, not a scan."""
    return store.state.open_flow_of(member_id)


def member_mobility(store: Store, member: dict[str, Any]) -> str:
    """How the member is mobile as this store's organization sees it: ``outflow`` at home,
    ``inflow`` at the host, ``none`` (a county above both sees ``outflow`` first)."""
    found = mobility(store.state, store.state.rec(member), store.state.own_subtree())
    return "outflow" if "outflow" in found else "inflow" if "inflow" in found else "none"


def resolve_flow(store: Store, key: str) -> dict[str, Any]:
    """A flow by id, or the open flow of the member that ``key`` names."""
    doc = store.get(key.strip().upper()) if ULID_RE.fullmatch(key.strip().upper()) else None
    if doc is not None and doc["type"] == "flow":
        return doc
    member = resolve_member(store, key)
    flow = open_flow(store, member["id"])
    if flow is None:
        raise FlowStateError(f"{member['name']} 没有未结束的流动登记",
                             f"{member['name']} has no open flow")
    return flow


def add_member(store: Store, values: dict[str, Any]) -> str:
    values = dict(values)
    if not values.get("home_org_id") and not values.get("external_home_org"):
        values["home_org_id"] = store.meta.get("own_org_id")
    values.setdefault("standing", "full")
    return store.put("member", values)


def edit_member(store: Store, member_id: str, values: dict[str, Any]) -> None:
    store.put("member", values, member_id)


def flow_out(store: Store, member_id: str, values: dict[str, Any]) -> str:
    """Register an outflow (M-1.2): the member left; the host may be known or not (M-1.3)."""
    member = store.get(member_id)
    if member is None or member["type"] != "member":
        raise NotFound("党员", "member", member_id)
    if open_flow(store, member_id) is not None:
        raise FlowStateError(f"{member['name']} 已有未结束的流动登记，请先结束它",
                             f"{member['name']} already has an open flow; end it first")
    values = {**values, "home_org_id": member.get("home_org_id")}
    values["status"] = "reported" if values.get("reported_on") else "pending_report"
    return store.put("flow", {"member_id": member_id, **values})


def flow_in(store: Store, member: dict[str, Any] | str, values: dict[str, Any]) -> tuple[str, str]:
    """Register an inflow (M-2.3a): a member of another organization arrived here. ``member`` is
    an existing member's id or the fields of a new one (their home is usually outside).

    A person this store already holds (the same id, or the same ID number) is linked, never
    registered twice: if the home branch's registration of the flow hosted here has arrived
    already, the arrival is recorded on that flow. A person the county holds but this laptop
    does not is linked by the county server at the next sync (DESIGN §3.3)."""
    values = dict(values)
    values.setdefault("host_org_id", store.meta.get("own_org_id"))
    if isinstance(member, dict) and member.get("id_number"):
        number = coerce(TYPES["member"]["id_number"], member["id_number"])
        if isinstance(number, str) and number in store.state.by_id_number:
            member = store.state.by_id_number[number]
    if isinstance(member, str):
        existing = store.get(member)
        if existing is None or existing["type"] != "member":
            raise NotFound("党员", "member", member)
        if existing.get("home_org_id") in store.state.own_subtree():
            raise FlowStateError(f"{existing['name']} 是本组织的党员：外出请登记流出",
                                 f"{existing['name']} is a member here: register an outflow")
        flow = open_flow(store, member)
        if flow is not None and flow.get("host_org_id") == values["host_org_id"]:
            if values.get("reported_on") and flow["status"] == "pending_report":
                report_in(store, flow["id"], values["reported_on"])
            return member, flow["id"]
        with store.batch() as b:
            if existing.get("archived") == "departed":
                b.put("member", {"archived": None}, member)
            flow_id = b.put("flow", {
                "member_id": member, "home_org_id": existing.get("home_org_id"),
                "status": "reported" if values.get("reported_on") else "pending_report",
                **values})
        return member, flow_id
    values["status"] = "reported" if values.get("reported_on") else "pending_report"
    with store.batch() as b:
        member_id = b.put("member", {"standing": "full", **member})
        flow_id = b.put("flow", {"member_id": member_id, **values})
    return member_id, flow_id


def report_in(store: Store, flow_id: str, on: str) -> None:
    """The member reported in to the host organization (M-1.2, M-2.4b). The host records it;
    the home side only for a host outside the system (the store refuses otherwise)."""
    flow = store.get(flow_id)
    if flow is None or flow["type"] != "flow":
        raise NotFound("流动登记", "flow", flow_id)
    if flow.get("status") == "ended":
        raise FlowStateError("该流动登记已结束", "the flow has ended")
    store.put("flow", {"reported_on": on, "status": "reported"}, flow_id)


def end_flow(store: Store, flow_id: str, on: str, reason: str,
             today: dt.date | None = None) -> None:
    """Close a flow: the member returned, transferred membership (M-1.4) or other. A member
    whose home is outside the system and who leaves the organization that registered the
    arrival is kept there as history (archived: departed)."""
    flow = store.get(flow_id)
    if flow is None or flow["type"] != "flow":
        raise NotFound("流动登记", "flow", flow_id)
    if flow.get("status") == "ended":
        raise FlowStateError("该流动登记已结束", "the flow has already ended")
    member = store.get(flow["member_id"])
    with store.batch(today) as b:
        b.put("flow", {"status": "ended", "ended_on": on, "end_reason": reason}, flow_id)
        if member is not None:
            if member.get("home_org_id") and reason == "transferred":
                b.put("member", {"archived": "transferred"}, member["id"])
            elif not member.get("home_org_id"):
                b.put("member", {"archived": "departed"}, member["id"])


def log_contact(store: Store, member_id: str, values: dict[str, Any]) -> str:
    """A contact with the member (M-2.2b, M-2.3b); reaching them ends a lost-contact spell."""
    member = store.get(member_id)
    if member is None or member["type"] != "member":
        raise NotFound("党员", "member", member_id)
    flow = open_flow(store, member_id)
    with store.batch() as b:
        contact_id = b.put("contact", {"member_id": member_id,
                                       "flow_id": flow["id"] if flow else None, **values})
        if b.lookup(contact_id).get("reached") and member.get("lost_contact_since"):  # type: ignore[union-attr]
            try:
                b.put("member", {"lost_contact_since": None}, member_id)
            except Forbidden:
                pass  # the home side keeps that field; it sees the contact and clears it
    return contact_id


def resolve_conflict(store: Store, conflict_id: str, value: Any) -> None:
    """A person picks the value of a field two devices changed at once (DESIGN §3.2): the field
    is set and the conflict closed in one commit; both sync like any edit."""
    conflict = store.get(conflict_id)
    if conflict is None or conflict["type"] != "conflict":
        raise NotFound("冲突", "conflict", conflict_id)
    subject = store.get(conflict["subject_id"], include_deleted=True)
    with store.batch() as b:
        if subject is not None and not subject.get("deleted"):
            b.put(subject["type"], {conflict["field"]: value}, subject["id"])
        b.put("conflict", {"status": "resolved"}, conflict_id)
