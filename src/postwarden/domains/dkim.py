"""DKIM keys and signing for sending domains.

Keys are made and published the way Postmark does it (a timestamp selector such as
``20161205081851pm`` and a ``k=rsa; p=...`` TXT value), so a domain moved from Postmark
reads the same. Signing is relaxed/relaxed rsa-sha256 (RFC 6376), written here rather than
taken from dkimpy: every message sent is signed, and dkimpy does the RSA step in pure
Python, some 20 times slower than OpenSSL (bench/dkim.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_SIZES = (1024, 2048)

#: Signed when present, in this order. From is required by RFC 6376 §5.4.
DEFAULT_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)

_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
_LINE_WIDTH = 76


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A fresh key pair. ``private_pem`` is plaintext: encrypt it before it is stored."""

    private_pem: bytes
    public_txt: str
    bits: int


def generate_key(bits: int = 2048) -> DkimKey:
    """1024 bits is what Postmark still hands out (``WeakDKIM``); 2048 is the default."""
    if bits not in KEY_SIZES:
        raise ValueError(f"DKIM key size must be one of {KEY_SIZES}, not {bits}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return DkimKey(private_pem=private_pem, public_txt=public_txt_for(key.public_key()), bits=bits)


def public_txt_for(public_key: rsa.RSAPublicKey) -> str:
    """The TXT value as Postmark shows it: SubjectPublicKeyInfo DER, so 1024-bit keys read ``p=MIGfMA0...``."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "k=rsa; p=" + base64.b64encode(der).decode("ascii")


def selector_for(created_at: datetime) -> str:
    """Postmark's selector: the key's creation time in UTC, then ``pm``; a new key never reuses an old name."""
    if created_at.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware one (UTC)")
    return created_at.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "pm"


def dkim_host(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def _squeeze(data: bytes) -> bytes:
    """Every run of spaces and tabs as one space. Done with bytes.replace, not a regex:
    a regex walks a 10 KB body in Python's engine and costs more than the RSA signature."""
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfold, one space per whitespace run, none at the ends."""
    unfolded = value.replace(b"\r\n", b"")
    return name.rstrip(b" \t").lower() + b":" + _squeeze(unfolded).strip(b" ") + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 (with erratum 3951: an empty body stays empty). ``body`` has CRLF line ends."""
    body = _squeeze(body).replace(b" \r\n", b"\r\n")
    end = len(body)
    while end >= 2 and body[end - 2 : end] == b"\r\n":
        end -= 2
    if end == 0:
        return b""
    # Whitespace on a last line without its CRLF is still whitespace at the end of a line.
    return body[:end].rstrip(b" ") + b"\r\n"


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Header fields as (name, raw value with its folds) and the body, with bare LFs read as CRLF."""
    if message.count(b"\n") != message.count(b"\r\n"):
        message = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    blank = message.find(b"\r\n\r\n")
    if message.startswith(b"\r\n"):
        head, body = b"", message[2:]
    elif blank == -1:
        head, body = message if message.endswith(b"\r\n") else message + b"\r\n", b""
    else:
        head, body = message[: blank + 2], message[blank + 4 :]
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name.rstrip(b" \t")):
            raise ValueError(f"not a header field: {line[:60]!r}")
        fields.append((name, value))
    return fields, body


def _fold_tags(tags: Sequence[bytes], start: int) -> bytes:
    """Tags joined by ``; `` and wrapped with FWS, which relaxed canonicalization ignores."""
    out = bytearray()
    column = start
    for i, tag in enumerate(tags):
        piece = tag + (b";" if i < len(tags) - 1 else b"")
        if column + 1 + len(piece) > _LINE_WIDTH and column > start:
            out += b"\r\n\t"
            column = 8
        else:
            out += b" "
            column += 1
        out += piece
        column += len(piece)
    return bytes(out)


class DkimSigner:
    """Signs with one domain key; the parsed key is kept, since loading it costs more than a signature."""

    def __init__(self, private_pem: bytes, selector: str, domain: str) -> None:
        key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a DKIM key must be RSA")
        self._key = key
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()
        self._selector = selector.encode("ascii")
        self._domain = domain.encode("ascii")

    def sign(
        self,
        message: bytes,
        headers: Sequence[bytes] = DEFAULT_SIGNED_HEADERS,
        *,
        timestamp: int | None = None,
    ) -> bytes:
        """The ``DKIM-Signature`` field, CRLF-terminated, to put in front of ``message``.

        Of ``headers``, those the message has are signed, every instance (paired bottom-up,
        RFC 6376 §5.4.2); absent ones stay out of ``h=``, so nothing is oversigned.
        """
        fields, body = split_message(message)
        order = list(dict.fromkeys(name.lower() for name in headers))
        if b"from" not in order:
            raise ValueError("the From header must be signed")
        positions: dict[bytes, list[int]] = {}
        for i, (name, _) in enumerate(fields):
            positions.setdefault(name.rstrip(b" \t").lower(), []).append(i)
        if b"from" not in positions:
            raise ValueError("the message has no From header")
        h_list = [name for name in order for _ in positions.get(name, ())]

        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        tags = [
            b"v=1",
            b"a=rsa-sha256",
            b"c=relaxed/relaxed",
            b"d=" + self._domain,
            b"s=" + self._selector,
            b"t=%d" % (int(time.time()) if timestamp is None else timestamp),
            b"h=" + b":".join(h_list),
            b"bh=" + body_hash,
            b"b=",
        ]
        value = _fold_tags(tags, start=len(b"DKIM-Signature:"))

        data = bytearray()
        for name in h_list:
            data += relaxed_header(*fields[positions[name].pop()])  # bottom-up, as verifiers pair them
        data += relaxed_header(b"DKIM-Signature", value)[:-2]

        signature = base64.b64encode(self._key.sign(bytes(data), self._padding, self._hash))
        return b"DKIM-Signature:" + value + _wrap_b64(signature, first=_LINE_WIDTH - _last_line_len(value)) + b"\r\n"


def _last_line_len(value: bytes) -> int:
    line = value.rsplit(b"\r\n", 1)[-1]
    return len(line.expandtabs(8)) + (len(b"DKIM-Signature:") if b"\r\n" not in value else 0)


def _wrap_b64(data: bytes, first: int) -> bytes:
    """The b= value in lines; dkimpy folds it too, and verifiers drop FWS inside it."""
    chunks = [data[:first]] if first >= 8 else [b""]  # too little room left: start on a new line
    rest = data[first:]
    chunks += [rest[i : i + _LINE_WIDTH - 8] for i in range(0, len(rest), _LINE_WIDTH - 8)]
    return b"\r\n\t".join(chunks)
