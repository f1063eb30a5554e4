"""The store against a plain dict: random edits, deletes, close/reopen and compaction between
steps; the live records must equal the model's every time (DESIGN §2.4)."""

from __future__ import annotations

import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from store import Store, ValidationError
from store.validate import id_birth_date, id_gender
from tests.conftest import PASSPHRASE, create_store, make_id_number

names = st.text(alphabet="张王李赵刘陈单曾解区仇欧阳三四五六国芳伟强丽a", min_size=1, max_size=4)
phones = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
notes = st.text(st.characters(exclude_categories=["Cc", "Cf", "Cs"]), max_size=30)
ids = st.builds(make_id_number, st.sampled_from(["330106", "110105", "440305"]),
                st.dates(min_value=__import__("datetime").date(1950, 1, 1),
                         max_value=__import__("datetime").date(2004, 12, 31)).map(
                    lambda d: d.strftime("%Y%m%d")),
                st.integers(0, 999))

MEMBER_FIELDS = {
    "name": names, "phone": phones, "notes": notes, "id_number": ids,
    "education": st.sampled_from(["college", "bachelor", "senior"]),
    "standing": st.sampled_from(["full", "probationary"]),
}


def normalized(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value).strip() or None
    return value


class StoreMachine(RuleBasedStateMachine):
    members = Bundle("members")

    @initialize()
    def make_store(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.path = self.dir / "store"
        self.store, _ = create_store(self.path)
        self.store.compact_min = 2048  # compaction happens on its own too
        self.org = self.store.meta["own_org_id"]
        self.model: dict[str, dict[str, Any]] = {}

    def _taken(self, number: Any, rec_id: str | None = None) -> bool:
        """One person, one record: an ID number another member holds is refused (DESIGN §2.2)."""
        return bool(number) and any(m.get("id_number") == number for i, m in self.model.items()
                                    if i != rec_id)

    @staticmethod
    def _from_id(expected: dict[str, Any], old: Any) -> None:
        """Birth date and gender follow the ID number unless they were typed otherwise."""
        number = expected.get("id_number")
        if not number:
            return
        born = id_birth_date(number).isoformat()
        old_born = id_birth_date(old).isoformat() if old else None
        if expected.get("birth_date") in (None, old_born):
            expected["birth_date"] = born
        if expected.get("gender") in (None, id_gender(old) if old else None):
            expected["gender"] = id_gender(number)

    @rule(target=members, fields=st.fixed_dictionaries(
        {"name": names}, optional={k: v for k, v in MEMBER_FIELDS.items() if k != "name"}))
    def add(self, fields: dict[str, Any]) -> str:
        if self._taken(fields.get("id_number")):
            try:
                self.store.put("member", {**fields, "home_org_id": self.org})
            except ValidationError as exc:
                assert exc.rule == "id_duplicate", exc.issues
            else:
                raise AssertionError("a second member with the same ID number was accepted")
            fields = {k: v for k, v in fields.items() if k != "id_number"}
        rec_id = self.store.put("member", {**fields, "home_org_id": self.org})
        expected = {k: normalized(v) for k, v in fields.items()}
        expected["home_org_id"] = self.org
        self._from_id(expected, None)
        self.model[rec_id] = {k: v for k, v in expected.items() if v is not None}
        return rec_id

    @rule(rec_id=members, field=st.sampled_from(sorted(MEMBER_FIELDS)), data=st.data())
    def edit(self, rec_id: str, field: str, data: st.DataObject) -> None:
        if rec_id not in self.model:
            return
        value = data.draw(MEMBER_FIELDS[field])
        if field == "id_number" and self._taken(value, rec_id):
            try:
                self.store.put("member", {field: value}, rec_id)
            except ValidationError as exc:
                assert exc.rule == "id_duplicate", exc.issues
                return
            raise AssertionError("an ID number another member holds was accepted")
        old = self.model[rec_id].get("id_number")
        expected = dict(self.model[rec_id])
        if normalized(value) is None:
            expected.pop(field, None)
        else:
            expected[field] = normalized(value)
        if field == "id_number":
            self._from_id(expected, old)
            number = expected.get("id_number")
            if number and (expected.get("birth_date"), expected.get("gender")) != (
                    id_birth_date(number).isoformat(), id_gender(number)):
                # kept from before the number was cleared: the new number contradicts them
                try:
                    self.store.put("member", {field: value}, rec_id)
                except ValidationError as exc:
                    assert {i.rule for i in exc.issues} <= {"id_birth_mismatch",
                                                            "id_gender_mismatch"}, exc.issues
                    return
                raise AssertionError("an ID number contradicting the birth date or gender "
                                     "was accepted")
        self.store.put("member", {field: value}, rec_id)
        self.model[rec_id] = expected

    @rule(rec_id=members, field=st.sampled_from(["phone", "notes", "id_number", "education"]))
    def clear(self, rec_id: str, field: str) -> None:
        if rec_id in self.model:
            self.store.put("member", {field: None}, rec_id)
            self.model[rec_id].pop(field, None)

    @rule(rec_id=members, bad=st.sampled_from([
        {"phone": "12345"}, {"id_number": "110105194912310021"}, {"name": ""},
        {"birth_date": "2023-02-29"}, {"home_org_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}]))
    def refused_edit_changes_nothing(self, rec_id: str, bad: dict[str, Any]) -> None:
        if rec_id not in self.model:
            return
        seq = self.store.meta["dev_seq"]
        try:
            self.store.put("member", bad, rec_id)
        except ValidationError:
            pass
        else:
            raise AssertionError(f"{bad} was accepted")
        assert self.store.meta["dev_seq"] == seq

    @rule(rec_id=consumes(members))
    def delete(self, rec_id: str) -> None:
        if rec_id in self.model:
            self.store.delete(rec_id)
            del self.model[rec_id]

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store.open(self.path, PASSPHRASE)

    @rule()
    def compact(self) -> None:
        self.store.compact()

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def search_finds_by_exact_name(self) -> None:
        rec_id, fields = next(iter(self.model.items()))
        found = {m["id"] for m in self.store.search_members(fields["name"])}
        assert rec_id in found

    @invariant()
    def equals_model(self) -> None:
        live = {m["id"]: {k: v for k, v in m.items()
                          if k not in ("id", "type", "created_at", "updated_at", "deleted")}
                for m in self.store.live("member")}
        assert live == self.model

    def teardown(self) -> None:
        self.store.close()
        # a final cold open sees exactly what the last invariant saw
        with Store.open(self.path, PASSPHRASE) as s:
            assert not [f for f in s.doctor() if f.level == "error"]
            assert {m["id"] for m in s.live("member")} == set(self.model)
        shutil.rmtree(self.dir, ignore_errors=True)


StoreMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreMachine = StoreMachine.TestCase
