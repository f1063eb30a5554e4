"""Shared fixtures: real stores with real encryption (light Argon2id parameters, stored in the
store like any others, so tests that create many stores stay fast)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import TEST_KDF, Store

PASSPHRASE = "correct horse battery"
ORG = {"name": "城关村党支部", "kind": "branch", "division_code": "330106"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kills", type=int, default=100,
                     help="SIGKILLs in the crash-safety test (CI runs 100; use 500+ locally)")


def make_id_number(region: str = "330106", birth: str = "19850315", seq: int = 123) -> str:
    """A GB 11643 number with its ISO 7064 MOD 11-2 check character, computed here from the
    standard rather than by the code under test."""
    body = f"{region}{birth}{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def create_store(path: Path, **kwargs: object) -> tuple[Store, str]:
    return Store.create(path, PASSPHRASE, kdf=TEST_KDF, org=dict(ORG), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    s, _ = create_store(store_path)
    yield s
    s.close()
