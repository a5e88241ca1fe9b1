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

Running it for real (notebook 04): ``persistence`` (kill -9 under each
setting), ``blocking`` (slow scripts, BUSY, SCRIPT KILL), ``memory`` (bytes per
member and entry, eviction), ``security`` (ACL users, injection, exposure) and
``cluster`` (a throwaway local Redis Cluster, where a key lives).

The workshop itself: ``magic`` (the ``%%redis`` cell magic), ``exercises`` and
one ``<pattern>_exercises`` module per notebook (the "Your turn" checks), and
``doctor`` (``make doctor``'s pre-flight check).
"""

from helpers.connection import connect
from helpers.sql import connect_sql

__all__ = ["connect", "connect_sql"]
