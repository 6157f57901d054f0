"""The timing loop bench.py and records.py share: interleaved rounds, medians, the loop's own cost subtracted."""

from __future__ import annotations

import random
import statistics
import timeit
from typing import Any


def interleaved(scopes: dict[str, dict[str, Any]], statement: str, number: int, rounds: int,
                per: int = 1) -> dict[str, float]:
    """Median ns per run of ``statement`` (divided by ``per``) in each tool's scope.

    Every tool is timed once per round, in a shuffled order, so the machine's drift (two shared
    cores here) lands on every tool alike rather than on whichever ran last.
    """
    # One timer per tool, reused every round: on PyPy a new timer is new code, traced by the JIT again.
    timers = {name: timeit.Timer(statement, globals=scope) for name, scope in scopes.items()}
    loop = timeit.Timer("pass")
    samples: dict[str, list[float]] = {name: [] for name in scopes}
    for _ in range(rounds):
        order = list(scopes)
        random.shuffle(order)
        for name in order:
            empty = loop.timeit(number)
            seconds = timers[name].timeit(number)
            samples[name].append((seconds - empty) / number / per * 1e9)
    return {name: statistics.median(samples[name]) for name in scopes}
