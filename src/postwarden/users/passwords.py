"""Password hashing (argon2 through pwdlib) and generation."""

from __future__ import annotations

import secrets

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


def generate_password() -> str:
    return secrets.token_urlsafe(15)
