"""Token secrets at rest: encrypted so they can be shown again (as Postmark does), and
found by a keyed digest so a lookup never decrypts or compares plaintext."""

from __future__ import annotations

import base64
import hashlib
import uuid

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key)


class Keyring:
    """Keys derived from the installation's secret key, one per purpose."""

    def __init__(self, secret_key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"postwarden token encryption")))
        self._digest_key = _derive(secret_key, b"postwarden token lookup digest")
        #: Keys the audit log's hash chain and signs its pruning checkpoints.
        self.audit_key = _derive(secret_key, b"postwarden audit chain")

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:  # pragma: no cover - only with a changed secret key
            raise RuntimeError(
                "a stored token cannot be decrypted: POSTWARDEN_SECRET_KEY differs from the one it was stored with"
            ) from exc

    def digest(self, plaintext: str) -> str:
        """Lookup key for a presented token (keyed BLAKE2b, a MAC in one call: this runs on
        every request). Tokens are matched case-insensitively, as UUIDs."""
        return hashlib.blake2b(plaintext.strip().lower().encode(), key=self._digest_key, digest_size=32).hexdigest()


def new_api_token() -> str:
    """Account and server tokens are UUIDs, like Postmark's."""
    return str(uuid.uuid4())
