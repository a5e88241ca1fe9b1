"""Notebook 01, your turn 3: where would a score place, and who would be around it?"""


def where_would_i_be(r, key, score, radius):
    # "(" excludes the bound: players on exactly `score` tie with it, they are not ahead of it
    rank = 1 + r.zcount(key, f"({score}", "+inf")
    # the `radius` lowest of the higher scores come lowest first: reverse them to read best first
    above = r.zrangebyscore(key, f"({score}", "+inf", start=0, num=radius, withscores=True)[::-1]
    below = r.zrevrangebyscore(key, score, "-inf", start=0, num=radius, withscores=True)
    return rank, above, below
