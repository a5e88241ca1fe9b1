"""Workshop settings read from the environment, in one place.

``WORKSHOP_SIZE`` picks how big the experiments are:

* ``workshop`` (default): the sizes the course's claims are about, up to
  1,000,000 players. Needs about 1 GB of free memory and a few minutes.
* ``ci``: small sizes so the whole test suite runs in a few minutes.

``WORKSHOP_5M=1`` adds a 5,000,000-player run to the leaderboard benchmark.
``WORKSHOP_PREFIX`` changes the key prefix (default ``workshop:``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SIZES = ("workshop", "ci")


@dataclass(frozen=True)
class Settings:
    size: str
    prefix: str
    leaderboard_sizes: tuple[int, ...]
    rank_samples: int
    sql_rank_samples: int
    concurrency_writers: int
    concurrency_increments: int
    memory_members: int

    @property
    def is_ci(self) -> bool:
        return self.size == "ci"


def settings() -> Settings:
    """Read the settings; an unknown ``WORKSHOP_SIZE`` is an error, not a guess."""
    size = os.environ.get("WORKSHOP_SIZE", "workshop").strip().lower() or "workshop"
    if size not in SIZES:
        raise ValueError(f"WORKSHOP_SIZE must be one of {SIZES}, got {size!r}")
    prefix = os.environ.get("WORKSHOP_PREFIX", "workshop:")
    if not prefix or not prefix.endswith(":"):
        raise ValueError(f"WORKSHOP_PREFIX must be non-empty and end with ':', got {prefix!r}")
    if size == "ci":
        return Settings(size, prefix, (1_000, 10_000), 300, 50, 4, 100, 10_000)
    sizes = (1_000, 10_000, 100_000, 1_000_000)
    if os.environ.get("WORKSHOP_5M") == "1":
        sizes += (5_000_000,)
    return Settings(size, prefix, sizes, 5_000, 200, 8, 250, 100_000)
