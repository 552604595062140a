"""Failed-login throttling, per account and address, per account, and per client address.

Three counts, each within ``window`` seconds:

* an account from one address (``account_limit``): one place guessing one account's
  password is stopped after a few tries — and only that place: a person who mistyped, or a
  guesser at one address, does not lock the account's owner out from their own;
* an account from everywhere (``account_total_limit``, by default five times
  ``account_limit``): guessing one account from many addresses is still capped — at the
  price that someone failing from five or more addresses locks the account for everyone
  until the window passes;
* an address (``address_limit``, higher than an account's: an office behind one NAT address
  has many people mistyping): one address trying many accounts.

Past a limit, further attempts of that account / address are refused with a retry-after
until the oldest failure leaves the window. A success clears the failures of that account
from that address only: the failures from elsewhere (a guesser's) stay counted, and so does
the address's (a guesser who knows one password keeps its record).

The counters live in the process: a restart forgets them, and replicas count apart (each
still caps guessing at its limits per window); the hub counts in its store instead
(``province_hub.web.login_failures``). A refused attempt never reaches the password check,
so throttling also caps the scrypt work an attacker can make the server do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from sync.web.auth import TooManyAttempts, client_address

T = TypeVar("T")

#: What each count is of, as a refusal names it.
WHAT = {
    "p": "this account from this address",
    "a": "this account",
    "i": "this address",
}
#: Longest account name a key holds (a made-up name of any length counts under its start).
_MAX_ACCOUNT_KEY = 200
#: Longest address a key holds (an IPv6 address is at most 45 characters).
_MAX_ADDRESS_KEY = 64


class LoginThrottle:
    def __init__(
        self,
        *,
        account_limit: int = 5,
        address_limit: int = 20,
        account_total_limit: int | None = None,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.limits = {
            "p": account_limit,
            "a": account_total_limit if account_total_limit is not None else 5 * account_limit,
            "i": address_limit,
        }
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(account: str, address: str) -> tuple[str, str, str]:
        """The counts a login of ``account`` from ``address`` falls under, in the order a
        refusal names them: the pair, the account, the address."""
        name, place = account[:_MAX_ACCOUNT_KEY], address[:_MAX_ADDRESS_KEY]
        return (f"p:{place} {name}", f"a:{name}", f"i:{place}")

    def refusal(self, key: str, count: int, oldest: float, now: float) -> TooManyAttempts | None:
        """The refusal when ``count`` failures under ``key`` (the oldest at ``oldest``)
        reach its limit; else None."""
        if count < self.limits[key[0]]:
            return None
        wait = max(1, int(self.window - (now - oldest)) + 1)
        return TooManyAttempts(
            f"too many failed logins for {WHAT[key[0]]}; try again in {wait} s",
            retry_after=wait,
        )

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def check(self, account: str, address: str) -> None:
        """Raise :class:`TooManyAttempts` when a count of this login is at its limit."""
        now = self._clock()
        with self._lock:
            for key in self.keys(account, address):
                q = self._recent(key, now)
                refused = self.refusal(key, len(q), q[0] if q else now, now)
                if refused is not None:
                    raise refused

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:
                # Bounded memory under a spray of made-up account names: drop expired keys.
                for key in list(self._failures):
                    self._recent(key, now)
            for key in self.keys(account, address):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, account: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self.keys(account, address)[0], None)


def checked_login(
    request: Request, account: str, password: str, authenticate: Callable[[str, str], T | None]
) -> T | None:
    """Try a login through the app's :class:`LoginThrottle`: refused with
    :class:`TooManyAttempts` while locked out, counted when wrong, cleared when right."""
    throttle: LoginThrottle = request.app.state.throttle
    address = client_address(request)
    throttle.check(account, address)
    found = authenticate(account, password)
    if found is None:
        throttle.failed(account, address)
    else:
        throttle.succeeded(account, address)
    return found
