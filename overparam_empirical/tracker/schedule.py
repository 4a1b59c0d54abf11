"""Which update indices t the tracker measures in full ("tracked steps").

Accepted forms (t counts calls of ``tracker.step()`` from 0):

* ``"every:N"`` (or the integer ``N``): t = 0, N, 2N, ...;
* ``"log:N"``: about N steps per decade, t = round(10**(k/N)) - 1 for k = 0, 1, 2, ...
  (duplicates dropped), i.e. every step while the spacing is below one, then geometric;
* a callable ``schedule(t) -> bool``.

Steps that are not tracked still update the every-step sums (path length, Yin sums).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from overparam_theory.errors import InputError

Schedule = str | int | Callable[[int], bool]
_FORM = re.compile(r"^(every|log):([0-9]+)$")


class EveryN:
    """Tracks t = 0, N, 2N, ..."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, t: int) -> bool:
        return t % self.n == 0

    def __repr__(self) -> str:
        return f"every:{self.n}"


class LogSpaced:
    """Tracks t = round(10**(k/N)) - 1 for k = 0, 1, 2, ...: about N tracked steps per decade.

    Queries are expected in increasing t (as the tracker makes them); any order still answers
    correctly, only slower.
    """

    def __init__(self, per_decade: int) -> None:
        self.per_decade = per_decade
        self._k = 0

    def _point(self, k: int) -> int:
        return round(10.0 ** (k / self.per_decade)) - 1

    def __call__(self, t: int) -> bool:
        if self._point(self._k) > t:
            self._k = 0
        while self._point(self._k) < t:
            self._k += 1
        return self._point(self._k) == t

    def __repr__(self) -> str:
        return f"log:{self.per_decade}"


def parse_schedule(schedule: Schedule) -> Callable[[int], bool]:
    """Turn a schedule specification into a predicate ``tracked(t) -> bool``; bad forms -> ``InputError``."""
    if isinstance(schedule, bool):
        raise InputError(f"schedule must be 'every:N', 'log:N', an int or a callable, got {schedule!r}")
    if isinstance(schedule, int):
        if schedule < 1:
            raise InputError(f"schedule every N steps needs N >= 1, got {schedule}")
        return EveryN(schedule)
    if isinstance(schedule, str):
        match = _FORM.match(schedule.strip())
        if match is None:
            raise InputError(f"schedule {schedule!r} is not 'every:N', 'log:N' (N a positive integer)")
        kind, number = match.group(1), int(match.group(2))
        if number < 1:
            raise InputError(f"schedule {schedule!r} needs N >= 1")
        return EveryN(number) if kind == "every" else LogSpaced(number)
    if callable(schedule):
        return schedule
    raise InputError(f"schedule must be 'every:N', 'log:N', an int or a callable, got {schedule!r}")
