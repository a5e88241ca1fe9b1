"""Notebook 01, your turn 2: the week's board from the daily ones."""


def weekly_board(r, daily_keys, dest):
    # SUM adds each player's daily scores; a day with no board counts as empty;
    # dest is replaced, not added to; the answer is the number of players on it.
    return r.zunionstore(dest, daily_keys, aggregate="SUM")
