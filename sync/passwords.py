"""Password hashes for console accounts, city and hub alike.

scrypt (hashlib, RFC 7914 parameters n=2**14, r=8, p=1) with a random salt per account,
stored as ``scrypt$n$r$p$salt$digest``; checking uses a constant-time comparison and a
check for an unknown account costs the same as a real one (:func:`burn`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any

from sync.refusals import COMMON

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 12


def password_refusal(password: str, account_id: str) -> tuple[str, dict[str, Any]] | None:
    """Why ``password`` may not be the password of ``account_id``, as a refusal code of
    :data:`sync.refusals.COMMON` and its values (None: it may)."""
    if len(password) < MIN_PASSWORD:
        return "password.too_short", {"minimum": MIN_PASSWORD}
    if not password.strip():
        return "password.only_spaces", {}
    if password.strip().casefold() == account_id.casefold():
        return "password.is_staff_id", {}
    return None


def change_refusal(
    stored_hash: str, *, current: str, new: str, again: str, account_id: str
) -> tuple[str, dict[str, Any]] | None:
    """Why an account holder may not change their own password from ``current`` (checked
    against ``stored_hash``) to ``new``, typed twice (``again``), as a refusal code of
    :data:`sync.refusals.COMMON` and its values (None: they may). The same rule on the hub's
    and the city's account page."""
    if new != again:
        return "password.repeat_differs", {}
    if not verify_password(current, stored_hash):
        return "password.wrong_current", {}
    refusal = password_refusal(new, account_id)
    if refusal is not None:
        return refusal
    if new == current:
        return "password.same", {}
    return None


def password_problem(password: str, account_id: str) -> str | None:
    """Why ``password`` may not be the password of ``account_id``, in English (None: it may)."""
    refusal = password_refusal(password, account_id)
    return None if refusal is None else COMMON.say(refusal[0], "en", refusal[1])


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(actual.hex(), digest)


@functools.cache
def _dummy_hash() -> str:
    # Hashed once: burning must cost one check, as a real login does, not a hash and a check.
    return hash_password("x" * MIN_PASSWORD)


def burn(password: str) -> None:
    """Spend the time of a real check, so an unknown account id cannot be told apart."""
    verify_password(password, _dummy_hash())
