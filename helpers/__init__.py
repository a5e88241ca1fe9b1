"""Helpers shared by the Redis Beyond Cache notebooks.

One module per concern: ``connection`` (find or start a Redis), ``servers``
(throwaway servers), ``sql`` (the SQL baseline), ``keyspace`` (our keys and
their clean-up), ``config`` (workshop size), ``scripts`` (Lua from ``lua/``),
``bench`` and ``plots`` (measuring and showing), and one module per pattern
(``leaderboard``).
"""

from helpers.connection import connect
from helpers.sql import connect_sql

__all__ = ["connect", "connect_sql"]
