"""Failed-login throttling counted in the hub's store, shared by every replica.

:class:`sync.web.throttle.LoginThrottle` counts in the process: behind one address, N hub
replicas would allow N times the limit. :class:`StoreLoginThrottle` keeps the same interface
and rules (per account and address, per account, per address, within a window; a success
clears the account's failures from that address) but reads and writes the
``login_failures`` table, so every replica sees every failure. Times are wall-clock seconds,
the clock replicas share. Rows older than the window are purged as failures are recorded, so
the table holds at most one window of failures.

A row keeps its count's kind and a keyed hash of what was typed (HMAC-SHA256 under the
console's secret key, which the replicas share), not the text: people type passwords into
the account field, and the store and its backups must not keep them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from sqlalchemy import Engine, delete, func, insert, select

from province_hub.store import LoginFailure
from sync.db import UnitOfWork
from sync.web.throttle import LoginThrottle


class StoreLoginThrottle(LoginThrottle):
    def __init__(
        self,
        engine: Engine,
        *,
        account_limit: int = 5,
        address_limit: int = 20,
        account_total_limit: int | None = None,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
        secret: bytes = b"",
    ) -> None:
        super().__init__(
            account_limit=account_limit,
            address_limit=address_limit,
            account_total_limit=account_total_limit,
            window=window,
            clock=clock,
        )
        self.engine = engine
        self._secret = secret

    def stored_keys(self, account: str, address: str) -> list[str]:
        """:meth:`keys` as the rows keep them: the kind (``p:``, ``a:``, ``i:``), then the
        keyed hash of the rest."""
        return [
            key[:2] + hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()
            for key in self.keys(account, address)
        ]

    def check(self, account: str, address: str) -> None:
        """Raise :class:`TooManyAttempts` when a count of this login is at its limit."""
        now = self._clock()
        keys = self.stored_keys(account, address)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(LoginFailure.key, func.count(), func.min(LoginFailure.at))
                .where(LoginFailure.key.in_(keys), LoginFailure.at > now - self.window)
                .group_by(LoginFailure.key)
            ).all()
        found = {key: (count, oldest) for key, count, oldest in rows}
        for key in keys:  # in the in-process throttle's order
            count, oldest = found.get(key, (0, now))
            refused = self.refusal(key, count, oldest, now)
            if refused is not None:
                raise refused

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with UnitOfWork(self.engine) as uow:
            uow.conn.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.window))
            uow.conn.execute(
                insert(LoginFailure),
                [{"key": key, "at": now} for key in self.stored_keys(account, address)],
            )
            uow.commit()

    def succeeded(self, account: str, address: str) -> None:
        with UnitOfWork(self.engine) as uow:
            uow.conn.execute(
                delete(LoginFailure).where(
                    LoginFailure.key == self.stored_keys(account, address)[0]
                )
            )
            uow.commit()
