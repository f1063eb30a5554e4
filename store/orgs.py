"""Organizations as people name them: by name or part of one, and as a tree.

Used by the laptop's command line (the orgs its store holds) and by the county admin's (the
county's tables), so an organization is named the same way everywhere (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import Ambiguous, NotFound

Org = Mapping[str, Any]


def resolve_org(orgs: Iterable[Org], key: str) -> str:
    """An organization by id, by the end of its id (as lists show it), by its name, or by a
    part of its name that only one organization has. Several matches are listed so the user
    can pick one."""
    key = key.strip()
    found_orgs = list(orgs)
    tests = (lambda o: o["id"] == key.upper(),
             lambda o: len(key) >= 6 and key.isalnum() and o["id"].endswith(key.upper()),
             lambda o: o.get("name") == key,
             lambda o: bool(key) and key in (o.get("name") or ""))
    for test in tests:
        found = [o for o in found_orgs if test(o)]
        if len(found) == 1:
            return str(found[0]["id"])
        if found:
            raise Ambiguous(key, [f"{o.get('name')}（…{o['id'][-8:]}）" for o in found])
    raise NotFound("组织", "organization", key)


def org_tree(orgs: Iterable[Org]) -> list[tuple[int, Org]]:
    """Organizations in tree order (children by name under their parent), each with its depth;
    one whose parent is not among them is a root."""
    by_id = {o["id"]: o for o in orgs}
    children: dict[str | None, list[str]] = {}
    for org in by_id.values():
        parent = org.get("parent_id") if org.get("parent_id") in by_id else None
        children.setdefault(parent, []).append(org["id"])
    out: list[tuple[int, Org]] = []

    def walk(parent: str | None, depth: int) -> None:
        for org_id in sorted(children.get(parent, []), key=lambda i: by_id[i]["name"]):
            out.append((depth, by_id[org_id]))
            walk(org_id, depth + 1)

    walk(None, 0)
    return out
