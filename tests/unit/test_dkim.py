"""DKIM keys and signatures, checked against dkimpy as an independent verifier."""

from __future__ import annotations

import base64
import importlib
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwarden.domains.dkim import (
    DEFAULT_SIGNED_HEADERS,
    DkimKey,
    DkimSigner,
    dkim_host,
    generate_key,
    relaxed_body,
    relaxed_header,
    selector_for,
)

# dkimpy's package is called ``dkim``, as is bench/dkim.py, which mypy would resolve instead.
dkimpy = importlib.import_module("dkim")

SELECTOR = "20161205081851pm"
DOMAIN = "example.com"

MESSAGE = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: someone@example.org\r\n"
    b"Subject: A test\r\n"
    b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)


@cache
def key(bits: int) -> DkimKey:
    """One key per size for the whole module: 2048-bit generation is the slow part."""
    return generate_key(bits)


def dns_for(txt: str, selector: str = SELECTOR, domain: str = DOMAIN) -> Callable[..., bytes | None]:
    expected = (dkim_host(selector, domain) + ".").encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.encode() if name == expected else None

    return lookup


def verifies(message: bytes, bits: int = 2048) -> bool:
    result: bool = dkimpy.verify(message, dnsfunc=dns_for(key(bits).public_txt))
    return result


def signed(message: bytes, bits: int = 2048, headers: Sequence[bytes] = DEFAULT_SIGNED_HEADERS) -> bytes:
    signer = DkimSigner(key(bits).private_pem, SELECTOR, DOMAIN)
    return signer.sign(message, headers) + message


def ten_kb_message() -> bytes:
    line = b"The quick brown fox jumps over the lazy dog, again and again.  \r\n"
    return MESSAGE + line * (10_240 // len(line))


@pytest.mark.parametrize("bits", [1024, 2048])
def test_the_txt_value_publishes_the_private_keys_public_half(bits: int) -> None:
    made = key(bits)
    assert made.bits == bits
    tag, _, public = made.public_txt.partition("; p=")
    assert tag == "k=rsa"
    published = serialization.load_der_public_key(base64.b64decode(public))
    private = serialization.load_pem_private_key(made.private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and isinstance(published, rsa.RSAPublicKey)
    assert published.public_numbers() == private.public_key().public_numbers()
    assert private.key_size == bits
    assert made.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted


def test_a_1024_bit_txt_value_reads_like_postmarks() -> None:
    assert key(1024).public_txt.startswith("k=rsa; p=MIGfMA0")


@pytest.mark.parametrize("bits", [0, 512, 1023, 3072, 4096])
def test_other_key_sizes_are_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="key size"):
        generate_key(bits)


def test_the_selector_is_the_utc_creation_time_then_pm() -> None:
    assert selector_for(datetime(2016, 12, 5, 8, 18, 51, 999, tzinfo=UTC)) == "20161205081851pm"
    plus_two = timezone(timedelta(hours=2))
    assert selector_for(datetime(2016, 12, 5, 10, 18, 51, tzinfo=plus_two)) == "20161205081851pm"
    with pytest.raises(ValueError, match="naive"):
        selector_for(datetime(2016, 12, 5, 8, 18, 51))


def test_the_host_is_under_domainkey() -> None:
    assert dkim_host("20161205081851pm", "newsuperdomain.name") == "20161205081851pm._domainkey.newsuperdomain.name"


@pytest.mark.parametrize("bits", [1024, 2048])
def test_a_10_kb_message_verifies(bits: int) -> None:
    message = ten_kb_message()
    assert len(message) >= 10_000
    assert verifies(signed(message, bits), bits)


def test_the_signature_names_the_key_and_the_signed_headers() -> None:
    header = DkimSigner(key(2048).private_pem, SELECTOR, DOMAIN).sign(MESSAGE, timestamp=1_700_000_000)
    tags = dict(tag.strip().split(b"=", 1) for tag in header.split(b":", 1)[1].replace(b"\r\n\t", b"").split(b";"))
    assert tags[b"d"] == DOMAIN.encode() and tags[b"s"] == SELECTOR.encode()
    assert tags[b"c"] == b"relaxed/relaxed" and tags[b"a"] == b"rsa-sha256"
    assert tags[b"t"] == b"1700000000"
    assert tags[b"h"] == b"from:to:subject:date:message-id"
    assert header.endswith(b"\r\n") and header.count(b"\r\n") == header.count(b"\r\n\t") + 1
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))


def test_a_changed_body_fails() -> None:
    message = signed(ten_kb_message())
    assert not verifies(message.replace(b"lazy dog", b"lazy cat", 1))
    assert not verifies(message + b"P.S.\r\n")


@pytest.mark.parametrize(
    ("original", "changed"),
    [
        (b"Subject: A test", b"Subject: A tesT"),
        (b"To: someone@example.org", b"To: someone-else@example.org"),
        (b"From: Sender <sender@example.com>", b"From: Sender <evil@example.com>"),
    ],
)
def test_a_changed_signed_header_fails(original: bytes, changed: bytes) -> None:
    message = signed(MESSAGE)
    assert verifies(message)
    assert not verifies(message.replace(original, changed))


def test_a_signature_checked_against_another_key_fails() -> None:
    message = signed(MESSAGE, 2048)
    assert not dkimpy.verify(message, dnsfunc=dns_for(key(1024).public_txt))


def test_folded_headers_and_trailing_whitespace_verify() -> None:
    message = (
        b"From: Sender\r\n <sender@example.com>\r\n"
        b"Subject:   A   long\r\n\tfolded \t subject  \r\n"
        b"To: someone@example.org   \r\n"
        b"\r\n"
        b"Line with trailing space   \r\n"
        b"Inner   \t  runs\r\n"
        b"\r\n"
        b"   \r\n"
        b"\r\n"
    )
    assert verifies(signed(message))


def test_relaxed_header_canonicalization_follows_rfc_6376() -> None:
    assert relaxed_header(b"SubJect ", b"  A   long\r\n\tfolded \t subject  ") == b"subject:A long folded subject\r\n"


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n \t\r\n", b""),
        (b"a  b \t\r\n\r\n\r\n", b"a b\r\n"),
        (b"no final newline", b"no final newline\r\n"),
        (b" leading  kept\r\n", b" leading kept\r\n"),
    ],
)
def test_relaxed_body_canonicalization_follows_rfc_6376(body: bytes, canonical: bytes) -> None:
    assert relaxed_body(body) == canonical


@pytest.mark.parametrize("body", [b"", b"\r\n", b"\r\n\r\n\r\n", b"no final newline", b"x\r\n\r\n"])
def test_empty_and_unterminated_bodies_verify(body: bytes) -> None:
    assert verifies(signed(MESSAGE.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body))


def test_a_message_without_a_body_verifies() -> None:
    assert verifies(signed(b"From: sender@example.com\r\nSubject: no body\r\n"))


def test_lf_and_crlf_line_ends_sign_alike() -> None:
    lf = ten_kb_message().replace(b"\r\n", b"\n")
    signer = DkimSigner(key(2048).private_pem, SELECTOR, DOMAIN)
    from_lf = signer.sign(lf, timestamp=1)
    assert from_lf == signer.sign(ten_kb_message(), timestamp=1)
    assert verifies(from_lf + lf)
    assert verifies(from_lf + ten_kb_message())


def test_repeated_headers_are_each_signed() -> None:
    message = b"From: sender@example.com\r\nTo: a@example.org\r\nTo: b@example.org\r\nSubject: two\r\n\r\nhi\r\n"
    header = DkimSigner(key(2048).private_pem, SELECTOR, DOMAIN).sign(message)
    assert b"h=from:to:to:subject;" in header
    assert verifies(header + message)
    assert not verifies(header + message.replace(b"b@example.org", b"c@example.org"))


def test_only_the_chosen_headers_are_signed() -> None:
    message = signed(MESSAGE, headers=(b"From", b"Subject"))
    assert verifies(message.replace(b"someone@example.org", b"other@example.org"))
    assert not verifies(message.replace(b"A test", b"Another test"))


def test_from_must_be_signed_and_present() -> None:
    signer = DkimSigner(key(2048).private_pem, SELECTOR, DOMAIN)
    with pytest.raises(ValueError, match="From header must be signed"):
        signer.sign(MESSAGE, headers=(b"subject",))
    with pytest.raises(ValueError, match="no From header"):
        signer.sign(b"Subject: hi\r\n\r\nbody\r\n")


def test_a_malformed_header_is_refused() -> None:
    signer = DkimSigner(key(2048).private_pem, SELECTOR, DOMAIN)
    with pytest.raises(ValueError, match="not a header field"):
        signer.sign(b"From: a@example.com\r\nthis is not a header\r\n\r\nbody\r\n")


def test_body_canonicalization_agrees_with_dkimpy_on_random_bodies() -> None:
    relaxed = importlib.import_module("dkim.canonicalization").Relaxed
    rng = random.Random(6376)
    pieces = [b"a", b"bc", b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\r\n\r\n", b"\r", b"x y"]
    for _ in range(2000):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12)))
        if not body.endswith(b"\r\n"):
            # dkimpy keeps whitespace on an unterminated last line; RFC 6376 drops it (tested above).
            body += b"\r\n"
        assert relaxed_body(body) == relaxed.canonicalize_body(body), body


def test_header_canonicalization_agrees_with_dkimpy_on_random_values() -> None:
    relaxed = importlib.import_module("dkim.canonicalization").Relaxed
    rng = random.Random(5322)
    pieces = [b"a", b"bc", b" ", b"  ", b"\t", b"\r\n ", b"\r\n\t", b"x y", b":"]
    for _ in range(2000):
        value = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 10)))
        [(name, canonical)] = relaxed.canonicalize_headers([(b"X-Test", value)])
        assert relaxed_header(b"X-Test", value) == name + b":" + canonical, value


def test_random_messages_verify() -> None:
    rng = random.Random(4871)
    words = [b"a", b"word", b" ", b"  ", b"\t", b"x\ty"]

    def text(count: int) -> bytes:
        return b"".join(rng.choice(words) for _ in range(count)).lstrip(b" \t") or b"v"

    signer = DkimSigner(key(1024).private_pem, SELECTOR, DOMAIN)
    for _ in range(60):
        head = [b"From: " + text(3) + b" <s@example.com>"]
        for name in rng.sample([b"To", b"Subject", b"Cc", b"Date", b"X-Other"], 3):
            folds = [text(rng.randrange(1, 4)) for _ in range(rng.randrange(1, 3))]
            head.append(name + b":" + rng.choice([b" ", b"", b"\t"]) + b"\r\n\t".join(folds) + rng.choice([b"", b" "]))
        lines = [text(rng.randrange(0, 8)) + rng.choice([b"", b" ", b"\t "]) for _ in range(rng.randrange(0, 6))]
        message = b"\r\n".join(head) + b"\r\n\r\n" + b"\r\n".join(lines) + b"\r\n" * rng.randrange(1, 3)
        if rng.random() < 0.5:
            message = message.replace(b"\r\n", b"\n")
        assert verifies(signer.sign(message) + message, 1024), message


def test_the_header_folds_and_verifies_whatever_the_name_lengths() -> None:
    for length in range(1, 60, 3):
        domain = "d" * length + ".example"
        selector = "s" * (61 - length)
        header = DkimSigner(key(1024).private_pem, selector, domain).sign(MESSAGE)
        assert all(len(line.expandtabs(8)) <= 78 for line in header.split(b"\r\n")[1:]), header
        assert dkimpy.verify(header + MESSAGE, dnsfunc=dns_for(key(1024).public_txt, selector, domain)), header
