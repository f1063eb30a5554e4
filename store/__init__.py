"""The register: schema, validation and the encrypted event-sourced store.

Importing ``store`` loads neither Textual nor any network library (a test proves it).
"""

from .batch import Batch
from .crypto import TEST_KDF, KdfParams
from .errors import (
    Ambiguous,
    BadRecoveryKey,
    Corrupted,
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
from .schema import CHOICES, TYPES, Field, RecordType
from .store import Finding, Store

__all__ = [
    "CHOICES", "TEST_KDF", "TYPES", "Ambiguous", "BadRecoveryKey", "Batch", "Corrupted",
    "Field", "Finding", "Issue", "KdfParams", "LiudongError", "Locked", "NotFound",
    "RecordType", "Store", "StoreError", "StoreExists", "StoreFailed", "StoreNotFound",
    "UnsafeParameters", "ValidationError", "WrongPassphrase",
]
