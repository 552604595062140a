"""Failed-login throttling of the shared web foundation, on a fake clock."""

from __future__ import annotations

import pytest

from sync.web.auth import TooManyAttempts
from sync.web.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_account_is_locked_after_its_limit_then_freed_by_the_window() -> None:
    clock = Clock()
    t = LoginThrottle(account_limit=3, address_limit=100, window=60, clock=clock)
    for _ in range(3):
        t.check("ann", "10.0.0.1")
        t.failed("ann", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as refused:
        t.check("ann", "10.0.0.1")
    assert "this account from this address" in str(refused.value)
    assert 1 <= refused.value.retry_after <= 61
    # From another address the owner still gets in: a guesser cannot lock them out.
    t.check("ann", "10.0.0.2")
    t.check("bob", "10.0.0.1")  # other accounts are not affected
    clock.now += 61
    t.check("ann", "10.0.0.1")


def test_an_account_guessed_from_many_addresses_is_locked_everywhere() -> None:
    t = LoginThrottle(account_limit=3, address_limit=100, window=60, clock=Clock())
    assert t.limits["a"] == 15  # five times the per-address limit, unless set
    t = LoginThrottle(
        account_limit=3, account_total_limit=6, address_limit=100, window=60, clock=Clock()
    )
    for n in range(6):
        t.failed("ann", f"10.0.0.{n % 3}")
    with pytest.raises(TooManyAttempts) as refused:
        t.check("ann", "10.0.0.99")
    assert str(refused.value).startswith("too many failed logins for this account;")


def test_a_made_up_account_name_of_any_length_counts_under_a_bounded_key() -> None:
    t = LoginThrottle(account_limit=2, address_limit=100, window=60, clock=Clock())
    assert all(len(key) <= 320 for key in t.keys("x" * 10_000, "2001:db8::1"))
    t.failed("x" * 10_000, "a")
    t.failed("x" * 10_001, "a")
    with pytest.raises(TooManyAttempts):
        t.check("x" * 10_002, "a")


def test_an_address_trying_many_accounts_is_locked() -> None:
    t = LoginThrottle(account_limit=100, address_limit=4, window=60, clock=Clock())
    for n in range(4):
        t.check(f"user{n}", "10.0.0.9")
        t.failed(f"user{n}", "10.0.0.9")
    with pytest.raises(TooManyAttempts, match="address"):
        t.check("someone-new", "10.0.0.9")
    t.check("someone-new", "10.0.0.8")


def test_a_success_clears_the_account_but_not_the_address() -> None:
    t = LoginThrottle(account_limit=2, address_limit=3, window=60, clock=Clock())
    t.failed("ann", "a")
    t.failed("ann", "a")
    t.succeeded("ann", "a")
    t.check("ann", "a")
    t.failed("carl", "a")
    with pytest.raises(TooManyAttempts):
        t.check("ann", "a")
