"""The register: schema, validation and the encrypted event-sourced store.

Importing ``store`` loads neither Textual nor any network library (a test proves it).
"""

__version__ = "0.4.0"  # the one version: pyproject.toml, the client, the server

from .batch import Batch
from .crypto import TEST_KDF, KdfParams
from .errors import (
    Ambiguous,
    BadRecoveryKey,
    Corrupted,
    Forbidden,
    Issue,
    LiudongError,
    Locked,
    NotFound,
    StoreError,
    StoreExists,
    StoreFailed,
    StoreNotFound,
    UnsafeParameters,
    ValidationError,
    WrongPassphrase,
)
from .events import Change
from .frozen import FrozenList, Record
from .schema import CHOICES, TYPES, Field, RecordType
from .store import Finding, Store

__all__ = [
    "CHOICES", "TEST_KDF", "TYPES", "Ambiguous", "BadRecoveryKey", "Batch", "Change", "Corrupted",
    "Field", "Finding", "Forbidden", "FrozenList", "Issue", "KdfParams", "LiudongError", "Locked", "NotFound",
    "Record", "RecordType", "Store", "StoreError", "StoreExists", "StoreFailed", "StoreNotFound",
    "UnsafeParameters", "ValidationError", "WrongPassphrase", "__version__",
]
