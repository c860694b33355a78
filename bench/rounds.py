"""In-process comparisons in alternating rounds: every kind once a round, in reverse order every
other round (what ran just before weighs on a kind's figures on these VMs), then each figure's
median per kind."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

Figures = dict[str, float]


def alternated(
    kinds: list[str], rounds: int, one: Callable[[str], Figures]
) -> dict[str, list[Figures]]:
    """``one(kind)`` for every kind, ``rounds`` times, each run's figures printed as it ends."""
    runs: dict[str, list[Figures]] = {kind: [] for kind in kinds}
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            load = os.getloadavg()[0]
            figures = one(kind)
            runs[kind].append(figures)
            shown = " ".join(f"{name} {value:5.2f}" for name, value in figures.items())
            print(f"{kind:9} load {load:4.1f} {shown}", flush=True)
    return runs


def print_medians(runs: dict[str, list[Figures]]) -> None:
    for kind, measured in runs.items():
        medians = " ".join(
            f"{name} {statistics.median(m[name] for m in measured):5.2f}" for name in measured[0]
        )
        print(f"{kind:9} medians: {medians}")
