"""Notebook 03, your turn 2: a sliding log without a script that still never over-admits."""


def hit_without_lua(r, key, limit, window_ms, now_ms, member):
    # One MULTI/EXEC that writes first: EXEC runs the four commands together, so no other client
    # counts between them, and the count it answers includes this request.
    pipe = r.pipeline(transaction=True)
    pipe.zremrangebyscore(key, "-inf", now_ms - window_ms)  # what has left the window
    pipe.zadd(key, {member: now_ms})
    pipe.zcard(key)
    pipe.pexpire(key, window_ms)
    count = pipe.execute()[2]
    if count > limit:
        r.zrem(key, member)  # refused: it must not count against the requests after it
        return False
    return True
