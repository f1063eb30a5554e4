"""Records as the store hands them out: dicts and lists that refuse to change.

The state applies every change copy-on-write (a changed record is a new object), so a record a
reader holds stays as it was, and it cannot be edited behind the journal's back: every change
goes through ``Store.batch()``. ``json.dumps``, ``dict(...)``, ``{**r}``, ``copy`` and ``pickle``
work as on a dict; ``dict(r)`` or ``{**r}`` gives a plain dict to edit.
"""

from __future__ import annotations

from typing import Any, NoReturn

READ_ONLY_ZH = "记录是只读的：请通过 Store.batch() 修改"
READ_ONLY_EN = "records are read-only: change them through Store.batch()"


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"{READ_ONLY_ZH} / {READ_ONLY_EN}")


class Record(dict):  # type: ignore[type-arg]
    """A record of the register: a dict whose mutators raise TypeError."""

    __slots__ = ()
    __setitem__ = __delitem__ = pop = popitem = clear = update = setdefault = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (Record, (dict(self),))

    def __copy__(self) -> Record:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Record:
        return self

    @property
    def doc_id(self) -> str:
        """The record's id (TinyDB's ``Document.doc_id``)."""
        return str(self["id"])


class FrozenList(list):  # type: ignore[type-arg]
    """A list inside a record (references, absences): refuses change like the record."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


def freeze(value: Any) -> Any:
    """``value`` with every dict and list in it made read-only (scalars as they are)."""
    kind = type(value)
    if kind is Record or kind is FrozenList:
        return value
    if isinstance(value, dict):
        return Record({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    return value


def freeze_record(doc: dict[str, Any]) -> Record:
    """A record read from a snapshot: copied once, its lists frozen only where it has some."""
    if type(doc) is Record:
        return doc
    for v in doc.values():
        if isinstance(v, (list, dict)):
            return Record({k: freeze(v) for k, v in doc.items()})
    return Record(doc)
