"""Helpers shared by the Redis Beyond Cache notebooks.

One module per concern: ``connection`` (find or start a Redis), ``servers``
(throwaway servers), ``sql`` (the SQL baseline), ``keyspace`` (our keys and
their clean-up), ``config`` (workshop size), ``scripts`` (Lua from ``lua/``),
``bench`` and ``plots`` (measuring and showing), ``processes`` (worker
processes started together) and ``check`` (can this machine run the workshop).

Per pattern: ``leaderboard`` (+ ``leaderboard_sql`` its SQL baseline,
``leaderboard_bench`` its experiments); ``streams`` and ``orders`` (+ ``outbox``
the SQL baseline, ``workload`` the shared event workload, ``streams_bench``);
``ratelimit`` (+ ``ratelimit_sql`` the SQL baseline, ``ratelimit_race`` and
``ratelimit_bench`` the experiments).
"""

from helpers.connection import connect
from helpers.sql import connect_sql

__all__ = ["connect", "connect_sql"]
