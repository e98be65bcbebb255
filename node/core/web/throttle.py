"""Login throttling: too many failures for one account name, or from one address, pause logins.

Failures are counted in a sliding window, in memory (a restart forgets them; an attacker cannot
restart the node). The account limit applies to any name typed, existing or not, so the answer
does not tell which names exist. A successful login clears that account's failures. Behind a
reverse proxy the address is the real client's, as a trusted proxy reported it
(``node.core.web.proxy``, decision 0028), never the proxy's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from node.core.store.users import normalise_username

WINDOW_SECONDS = 15 * 60
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
_MAX_TRACKED = 10_000  # keys kept at most, so a flood of names cannot exhaust memory


@dataclass
class LoginThrottle:
    clock: Callable[[], float]
    window: float = WINDOW_SECONDS
    account_limit: int = ACCOUNT_LIMIT
    address_limit: int = ADDRESS_LIMIT
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait_seconds(self, username: str, address: str | None) -> int:
        """0 if a login may be tried now, else how many seconds until it may."""
        now = self.clock()
        waits = [self._wait(self._account_key(username), self.account_limit, now)]
        if address:
            waits.append(self._wait(self._address_key(address), self.address_limit, now))
        return max(waits)

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        keys = [self._account_key(username)]
        if address:
            keys.append(self._address_key(address))
        for key in keys:
            self._record(key, now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(self._account_key(username), None)

    def _wait(self, key: str, limit: int, now: float) -> int:
        failures = self._recent(key, now)
        if len(failures) < limit:
            return 0
        return max(1, math.ceil(failures[-limit] + self.window - now))

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures

    def _record(self, key: str, now: float) -> None:
        if key not in self._failures and len(self._failures) >= _MAX_TRACKED:
            self._forget_oldest(now)
        failures = self._failures.setdefault(key, deque(maxlen=max(self.account_limit,
                                                                     self.address_limit)))
        failures.append(now)

    def _forget_oldest(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        if len(self._failures) >= _MAX_TRACKED:
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]

    @staticmethod
    def _account_key(username: str) -> str:
        return "account:" + normalise_username(username)

    @staticmethod
    def _address_key(address: str) -> str:
        return "address:" + address
