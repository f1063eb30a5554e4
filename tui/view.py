"""How records read on screen: names of referenced orgs, a member's row in lists, labels.
Shared by the screens; reads the store only (no Textual)."""

from __future__ import annotations

from typing import Any

from store.register import member_mobility, open_flow
from store.schema import TYPES
from tui.output import show_value, t


def org_name(store: Any, org_id: str | None, fallback: str = "") -> str:
    if not org_id:
        return fallback
    org = store.get(org_id)
    return str(org["name"]) if org else fallback or org_id[-6:]


def last_contact(store: Any, member_id: str) -> dict[str, Any] | None:
    contacts = store.state.records_of(member_id, "contact")
    return max(contacts, key=lambda c: c.get("on") or "") if contacts else None


def label(type_name: str, field: str, value: Any, store: Any = None) -> str:
    return show_value(type_name, field, value, store.get if store is not None else None)


def member_row(store: Any, member_id: str) -> tuple[str, ...]:
    """A member as the members list shows it: name, gender, mobility, the other side
    (host when the member is away, home when hosted here), flow status, last contact, phone."""
    m = store.get(member_id, include_deleted=True)
    if m is None:
        return ("?",)
    mobility = member_mobility(store, m)
    flow = open_flow(store, member_id) if mobility != "none" else None
    if mobility == "outflow" and flow is not None:
        other = org_name(store, flow.get("host_org_id"), str(flow.get("external_host") or ""))
        other = other or str(flow.get("destination_address") or "") or t("去向待定", "host unknown")
    elif mobility == "inflow":
        other = org_name(store, m.get("home_org_id"), str(m.get("external_home_org") or ""))
    else:
        other = org_name(store, m.get("home_org_id"), str(m.get("external_home_org") or ""))
    status = label("flow", "status", flow["status"]) if flow else ""
    contact = last_contact(store, member_id)
    seen = str(contact.get("on", "")) if contact else ""
    if m.get("lost_contact_since"):
        seen = t("失联", "lost") + (" " + seen if seen else "")
    mob = {"outflow": t("流出", "out"), "inflow": t("流入", "in")}.get(mobility, "")
    return (str(m.get("name", "")), label("member", "gender", m.get("gender")), mob, other,
            status, seen, str(m.get("phone") or ""))


def type_label(type_name: str) -> str:
    rtype = TYPES.get(type_name)
    return t(rtype.zh, rtype.en) if rtype else type_name


def field_label(type_name: str, name: str | None) -> str:
    rtype = TYPES.get(type_name)
    f = rtype.by_name.get(str(name)) if rtype else None
    return t(f.zh, f.en) if f else str(name or "")


def record_title(store: Any, rec_id: str, type_name: str) -> str:
    """A record as people know it: a member by name; a member's record as «name · kind»."""
    doc = store.get(rec_id, include_deleted=True)
    if doc is None:
        return f"{type_label(type_name)} …{rec_id[-6:]}"
    if doc["type"] == "member":
        return str(doc.get("name") or rec_id[-6:])
    member = store.get(str(doc.get("member_id") or ""), include_deleted=True)
    if member is not None:
        return f"{member.get('name', '')} · {type_label(doc['type'])}"
    rtype = TYPES.get(doc["type"])
    title = doc.get(rtype.title) if rtype else None
    return f"{type_label(doc['type'])} {title}" if title else type_label(doc["type"])
