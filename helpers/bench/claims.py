"""The course's claims, each written once: the bound it sets, the unit, the notebook it supports.

A claim is judged against a figure measured in the same run (``Claim.met``),
never against a number written down earlier: the notebooks' claims tables
(``table``), ``python -m helpers.bench`` and ``make doctor`` all read ``CLAIMS``
and measure on the learner's own machine. Judging is printed, never asserted:
benchmarks here do not pass or fail, and a slow laptop still runs the course.

A claim without a bound is context: its figure is shown beside the others,
with no verdict (``met`` is ``-``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True, kw_only=True)
class Claim:
    notebook: str  # "01".."04"
    text: str  # what the course says, as the claims table shows it
    bound: float | None = None  # None: context, shown without a verdict
    higher_is_better: bool = True
    unit: str = ""
    stated: str | None = None  # the target column, when the bound alone does not say it all

    @property
    def target(self) -> str:
        """``">= 150,000 events/s"``, ``"<= 1 ms"``, ``"context"``, or what ``stated`` says."""
        if self.stated is not None:
            return self.stated
        if self.bound is None:
            return "context"
        return f"{'>=' if self.higher_is_better else '<='} {_number(self.bound)} {self.unit}".strip()

    def met(self, measured: float | None) -> bool | None:
        """True or False against the bound; None for context or a figure that was not measured."""
        if self.bound is None or measured is None or math.isnan(measured):
            return None
        return measured >= self.bound if self.higher_is_better else measured <= self.bound

    def verdict(self, measured: float | None) -> str:
        """``"yes"``, ``"no"`` or ``"-"``: how the claims tables print ``met``."""
        return {True: "yes", False: "no", None: "-"}[self.met(measured)]


CLAIMS: dict[str, Claim] = {
    # notebook 01: leaderboards on sorted sets
    "bulk load": Claim(notebook="01", text="bulk load from one Python process", bound=200_000,
                       unit="members/s"),
    "ZREVRANK p99": Claim(notebook="01", text="ZREVRANK p99", bound=1.0,
                          higher_is_better=False, unit="ms"),
    "SQL rank gap": Claim(notebook="01", text="best SQL count(*) rank p99 / ZREVRANK p99",
                          bound=100, unit="x"),
    # a rank structure built in SQL (a bucket table kept by a trigger): context, Redis ships one
    "SQL bucket rank": Claim(notebook="01", text="SQL bucket-table rank p99 / ZREVRANK p99"),
    # make doctor's smaller board: SQL's COUNT(*) grows with N, so a median >= 20x at 100,000 rows
    # projects to notebook 01's >= 100x at 1,000,000
    "SQL rank gap at 100,000": Claim(notebook="01", text="median SQL rank / ZREVRANK at 100,000 players",
                                     bound=20, unit="x"),
    # notebook 02: streams
    "append": Claim(notebook="02", text="one process appends (pipelined)", bound=150_000, unit="events/s"),
    "consume": Claim(notebook="02", text="one consumer reads + acks", bound=150_000, unit="events/s"),
    "latency": Claim(notebook="02", text="end-to-end p99 at 10,000 events/s", bound=2.0,
                     higher_is_better=False, unit="ms"),
    "one producer": Claim(notebook="02", text="one producer process", stated="~200,000 events/s"),
    "producers": Claim(notebook="02", text="several producer processes", stated="~200,000 events/s"),
    "ceiling": Claim(notebook="02", text="redis-benchmark pipelined XADD (the server's ceiling, C clients)"),
    # the seed's claim as it is meant: a log written and read at the same time, every event acknowledged
    "together": Claim(notebook="02", text="producers and consumers at once, one stream",
                      bound=200_000, unit="events/s"),
    # notebook 03: rate limiting with Lua
    "decisions": Claim(notebook="03", text="one connection, Lua sliding log", bound=10_000,
                       unit="decisions/s"),
    "decision p99": Claim(notebook="03", text="one connection, Lua sliding log, p99", bound=1.0,
                          higher_is_better=False, unit="ms"),
    # the seed's "replaces a rate-limiting microservice": what one Redis serves many clients (context)
    "service": Claim(notebook="03", text="decisions/s one Redis served"),
    "over-admitted": Claim(notebook="03", text="trials over-admitted, Lua sliding log", bound=0,
                           higher_is_better=False, unit="trials", stated="0 in >= 100 trials"),
}  # fmt: skip


def table(rows: Iterable[tuple[Claim | str, float, Mapping[str, object]]], *, measured: str = "Redis",
          label: Mapping[Claim, str] | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per claim: ``claim``, ``target``, the figure (column ``measured``), ``met``, then extras.

    ``rows`` holds ``(claim or its name in CLAIMS, figure, {column: value})``;
    ``label`` overrides the text shown for a claim (to add "of 100 trials", say).
    """
    shown = []
    for claim, figure, extras in rows:
        claim = CLAIMS[claim] if isinstance(claim, str) else claim
        text = (label or {}).get(claim, claim.text)
        shown.append({"claim": text, "target": claim.target, measured: figure, "met": claim.verdict(figure),
                      **extras})  # fmt: skip
    return pd.DataFrame(shown)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"
