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
    # From another address too: the account itself is being guessed.
    with pytest.raises(TooManyAttempts) as refused:
        t.check("ann", "10.0.0.2")
    assert "account" in str(refused.value) and 1 <= refused.value.retry_after <= 61
    t.check("bob", "10.0.0.2")  # other accounts are not affected
    clock.now += 61
    t.check("ann", "10.0.0.1")


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
    t.succeeded("ann")
    t.check("ann", "b")
    t.failed("carl", "a")
    with pytest.raises(TooManyAttempts):
        t.check("ann", "a")
