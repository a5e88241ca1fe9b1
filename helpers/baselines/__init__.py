"""The other side of every comparison: what a good engineer of that system would build.

* ``sql``: the PostgreSQL connection (``connect_sql``) and the ``workshop_`` tables' clean-up;
* ``leaderboard``: a scores table with the best SQL rank queries (notebook 01);
* ``outbox``: a transactional outbox taken with SKIP LOCKED (notebook 02);
* ``ratelimit``: a sliding-log limiter under an advisory lock (notebook 03).

They are measured beside Redis by ``helpers.bench``; nothing here times anything.
"""
