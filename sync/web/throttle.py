"""Failed-login throttling, per account and per client address.

Counting both stops the two guessing patterns: many passwords against one account (from
anywhere), and one address trying many accounts. After ``account_limit`` failures for an
account, or ``address_limit`` from an address (higher: an office behind one NAT address has
many people mistyping), within ``window`` seconds, further attempts are refused with a
retry-after until the oldest failure leaves the window; a success clears the
account's count (not the address's: a guesser who knows one password keeps its record).

The counters live in the process: a restart forgets them, and replicas count apart (each
still caps guessing at ``limit`` per window). A refused attempt never reaches the password
check, so throttling also caps the scrypt work an attacker can make the server do.
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


class LoginThrottle:
    def __init__(
        self,
        *,
        account_limit: int = 5,
        address_limit: int = 20,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.limits = {"a": account_limit, "i": address_limit}
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

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
        """Raise :class:`TooManyAttempts` when this account or address is locked out."""
        now = self._clock()
        with self._lock:
            for key, what in ((f"a:{account}", "this account"), (f"i:{address}", "this address")):
                q = self._recent(key, now)
                if len(q) >= self.limits[key[0]]:
                    wait = max(1, int(self.window - (now - q[0])) + 1)
                    raise TooManyAttempts(
                        f"too many failed logins for {what}; try again in {wait} s",
                        retry_after=wait,
                    )

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:
                # Bounded memory under a spray of made-up account names: drop expired keys.
                for key in list(self._failures):
                    self._recent(key, now)
            for key in (f"a:{account}", f"i:{address}"):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"a:{account}", None)


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
        throttle.succeeded(account)
    return found
