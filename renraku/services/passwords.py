"""Password and PIN hashing (argon2id through argon2-cffi), and which passwords to refuse."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# 19,640 passwords most often found in leaks (the list Django ships, BSD licence).
COMMON_LIST = Path(__file__).with_name("common-passwords.txt.gz")
GUARDIAN_MIN = 8
STAFF_MIN = 10  # staff see many families' data


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Account(Protocol):
    password_hash: str | None
    session_epoch: int


def set_password(account: Account, password: str) -> None:
    """A new password signs the account out of every browser (a new session epoch)."""
    account.password_hash = hash_password(password)
    account.session_epoch = (account.session_epoch or 0) + 1


@functools.cache
def _common() -> frozenset[str]:
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


def weakness(password: str, min_length: int) -> str | None:
    """Why a new password is refused: ``"short"``, ``"common"``, or None when it is fine."""
    if len(password) < min_length:
        return "short"
    if password.lower().strip() in _common():
        return "common"
    return None
