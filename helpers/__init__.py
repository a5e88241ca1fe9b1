"""Helpers shared by the Redis Beyond Cache notebooks.

The top level is what a learner opens: the patterns, and the little they need.

* ``leaderboard``: a leaderboard on a sorted set (ranks, pages, neighbours, fair ties);
* ``streams``: an event log on a stream with consumer groups (``EventLog``, ``Worker``);
* ``orders``: event sourcing on that log (an order's events, a projection);
* ``ratelimit``: rate limiters as atomic Lua scripts (``RateLimiter``);
* ``keyspace`` (our keys and their clean-up), ``scripts`` (Lua from ``lua/``),
  ``bounds`` (what the helpers accept, checked), ``clients`` (redis-py clients
  from URLs, without retries);
* ``magic``: the ``%%redis`` cell magic (``%load_ext helpers.magic``).

The course's machinery, one folder per role (none of it is imported by the patterns):

* ``baselines``: the other side of each comparison, as a good engineer of that
  system builds it (PostgreSQL: ranks, an outbox, a sliding-log limiter);
* ``bench``: measuring (``timing``, ``workload``, ``processes``, ``plots``,
  ``claims``, ``sizes``) and the experiments of notebooks 01 to 03 (``leaderboard``;
  ``streams`` and ``outbox``; ``ratelimit`` and ``race``); ``python -m helpers.bench``
  runs a notebook's;
* ``production``: notebooks 04 and 05's experiments (persistence, blocking, memory,
  security, cluster);
* ``exercises``: the "Your turn" checkers, one module per notebook;
* ``servers``: throwaway Redis and PostgreSQL servers from pip wheels (or Docker);
* ``course``: finding the servers (``connection``), ``make doctor``, the server matrix,
  ``make html``'s site.

``connect()`` and ``connect_sql()`` (from ``course.connection`` and
``baselines.sql``) are the two calls every notebook starts with; they are
imported on first use, so importing a pattern loads none of the machinery.
"""

from __future__ import annotations

__all__ = ["connect", "connect_sql"]


def __getattr__(name: str):
    if name == "connect":
        from helpers.course.connection import connect

        return connect
    if name == "connect_sql":
        from helpers.baselines.sql import connect_sql

        return connect_sql
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
