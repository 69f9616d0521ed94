#!/usr/bin/env python3
"""DKIM key generation time and signing throughput, against the RSA step alone.

Run with the project's interpreter::

    .venv/bin/python bench/dkim.py [--duration 0.8] [--rounds 5] [--keys 10] [--check]

For 1024- and 2048-bit keys it measures:

* key generation (``postwarden.domains.dkim.generate_key``), mean of ``--keys`` keys;
* signing a 10 KB message, in messages/s, three ways with the same key:
  ``ours`` (``DkimSigner.sign``: parse, relaxed/relaxed canonicalization, hashes, RSA),
  ``dkimpy`` (``dkim.sign``, relaxed/relaxed, same headers; its RSA is pure Python) and
  ``raw`` (``cryptography``'s PKCS#1 v1.5 signature of a ready SHA-256 digest: the floor
  no DKIM signer can beat, since every message costs one such signature).

The three take turns for ``--rounds`` rounds of ``--duration`` CPU seconds each (process
CPU time, so other load on the machine does not count against a signer); figures are
medians, and a ratio is the median of the per-round ratios. Before timing, one signature
of each DKIM signer is checked with ``dkim.verify``. Prints a table, writes
``bench/results/dkim.json``; ``--check`` exits 1 when ours/raw is below 0.5 at 2048 bits.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from postwarden.domains.dkim import DEFAULT_SIGNED_HEADERS, DkimSigner, generate_key, split_message

# This file shares its name with dkimpy's package, so dkimpy is looked up without this directory.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR]
dkimpy = importlib.import_module("dkim")

RESULTS_PATH = BENCH_DIR / "results" / "dkim.json"
SELECTOR = "20261122000000pm"
DOMAIN = "example.com"
CHECK_BITS = 2048
CHECK_RATIO = 0.5


def ten_kb_message() -> bytes:
    head = (
        b"From: Sender <sender@example.com>\r\n"
        b"To: Someone <someone@example.org>\r\n"
        b"Subject: Your receipt for order 1234\r\n"
        b"Date: Sun, 22 Nov 2026 07:00:00 +0000\r\n"
        b"Message-ID: <20261122070000.1234@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
    )
    line = b"Thank you for your order.  It will ship within two business days.\r\n"
    return head + line * ((10_240 - len(head)) // len(line) + 1)


def rate(fn: Callable[[], object], duration: float) -> float:
    """Calls per CPU second of this process, over at least ``duration`` CPU seconds and three calls.

    CPU time rather than wall time: signing is single-threaded CPU work, and on a shared
    machine wall time also counts the moments another process held the core.
    """
    calls = 0
    start = time.process_time()
    deadline = start + duration
    while True:
        fn()
        calls += 1
        now = time.process_time()
        if now >= deadline and calls >= 3:
            return calls / (now - start)


def keygen_seconds(bits: int, count: int) -> dict[str, float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        generate_key(bits)
        times.append(time.perf_counter() - start)
    return {"mean_s": statistics.fmean(times), "min_s": min(times), "max_s": max(times), "keys": count}


def signers(bits: int, message: bytes) -> dict[str, Callable[[], object]]:
    made = generate_key(bits)
    key = serialization.load_pem_private_key(made.private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    ours = DkimSigner(made.private_pem, SELECTOR, DOMAIN)
    present = {name.strip().lower() for name, _ in split_message(message)[0]}
    include = [name for name in DEFAULT_SIGNED_HEADERS if name in present]
    digest = hashlib.sha256(message).digest()
    prehashed = utils.Prehashed(hashes.SHA256())

    def sign_dkimpy() -> bytes:
        signature: bytes = dkimpy.sign(
            message,
            SELECTOR.encode(),
            DOMAIN.encode(),
            made.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
        return signature

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return made.public_txt.encode()

    def sign_ours() -> bytes:
        return ours.sign(message)

    for label, sign in (("ours", sign_ours), ("dkimpy", sign_dkimpy)):
        if not dkimpy.verify(sign() + message, dnsfunc=dns):
            raise SystemExit(f"{label} signature at {bits} bits does not verify")
    return {
        "raw": lambda: key.sign(digest, padding.PKCS1v15(), prehashed),
        "ours": sign_ours,
        "dkimpy": sign_dkimpy,
    }


def measure(bits: int, message: bytes, rounds: int, duration: float) -> dict[str, Any]:
    fns = signers(bits, message)
    per_round: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            per_round[label].append(rate(fn, duration))
    ratios = {
        label: statistics.median(a / b for a, b in zip(per_round[label], per_round["raw"], strict=True))
        for label in ("ours", "dkimpy")
    }
    return {
        "bits": bits,
        "messages_per_s": {label: statistics.median(values) for label, values in per_round.items()},
        "per_round": per_round,
        "ratio_to_raw": ratios,
    }


def print_table(keygen: dict[int, dict[str, float]], signing: list[dict[str, Any]], message_len: int) -> None:
    print(f"{'bits':>5} {'keygen ms':>10} {'raw msg/s':>10} {'ours msg/s':>11} {'dkimpy msg/s':>13} "
          f"{'ours/raw':>9} {'dkimpy/raw':>11}")  # fmt: skip
    print("-" * 75)
    for row in signing:
        bits, rates, ratio = row["bits"], row["messages_per_s"], row["ratio_to_raw"]
        print(
            f"{bits:>5} {keygen[bits]['mean_s'] * 1000:>10.1f} {rates['raw']:>10.0f} {rates['ours']:>11.0f} "
            f"{rates['dkimpy']:>13.1f} {ratio['ours']:>9.2f} {ratio['dkimpy']:>11.3f}"
        )
    print(f"message: {message_len} bytes; msg/s per CPU second, medians of rounds; ratios: medians of per-round ratios")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=0.8, help="CPU seconds per signer per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keys", type=int, default=10, help="keys generated per size for the mean")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if ours/raw < {CHECK_RATIO} at {CHECK_BITS}")
    args = parser.parse_args()

    message = ten_kb_message()
    keygen = {bits: keygen_seconds(bits, args.keys) for bits in (1024, 2048)}
    signing = [measure(bits, message, args.rounds, args.duration) for bits in (1024, 2048)]
    print_table(keygen, signing, len(message))

    ours_at_check = next(row["ratio_to_raw"]["ours"] for row in signing if row["bits"] == CHECK_BITS)
    passed = ours_at_check >= CHECK_RATIO
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine": {"platform": platform.platform(), "python": platform.python_version()},
                "versions": {
                    "cryptography": metadata.version("cryptography"),
                    "openssl": openssl_backend.openssl_version_text(),
                    "dkimpy": metadata.version("dkimpy"),
                },
                "settings": {
                    "duration_s": args.duration,
                    "rounds": args.rounds,
                    "keys": args.keys,
                    "message_bytes": len(message),
                },
                "keygen": {str(bits): figures for bits, figures in keygen.items()},
                "signing": signing,
                "check": {"bits": CHECK_BITS, "min_ratio": CHECK_RATIO, "ours_ratio": ours_at_check, "passed": passed},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS_PATH.relative_to(Path.cwd()) if RESULTS_PATH.is_relative_to(Path.cwd()) else RESULTS_PATH}")
    if args.check and not passed:
        print(f"FAIL: ours/raw at {CHECK_BITS} bits is {ours_at_check:.2f} < {CHECK_RATIO}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
