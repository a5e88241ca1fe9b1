"""Notebook 04, your turn 1: how many players fit in a memory budget, from a measured sample."""

SAMPLE = 10_000  # far past 128 members: a skiplist, as a board of millions is


def players_that_fit(r, key, maxmemory_bytes, name_length):
    # names of the length asked: every name is stored once, so its length counts
    names = [f"p:{i}".ljust(name_length, "x") for i in range(SAMPLE)]
    r.zadd(key, {name: i for i, name in enumerate(names)})
    per_member = r.memory_usage(key, samples=0) / SAMPLE  # SAMPLES 0: count every member
    r.unlink(key)
    return int(maxmemory_bytes // per_member)
