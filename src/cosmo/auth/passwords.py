"""Password hashing with scrypt (stdlib), parameters stored in each hash so costs can rise later."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# OWASP's scrypt settings: N=2^15, r=8, p=3 (32 MiB, about 0.1 s). "low" exists only so test suites that
# create hundreds of users stay fast; it is refused by nothing but should never be set in production.
COSTS = {"standard": (2**15, 8, 3), "low": (2**10, 8, 1)}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, cost: str = "standard") -> str:
    n, r, p = COSTS[cost]
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2**27, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algo, n, r, p, salt, digest = encoded.split("$")
        if algo != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=2**27,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Verified against when the username is unknown, so both paths cost the same time.
DUMMY_HASH = hash_password("not-a-real-password", "low")
