"""Notebook 05, your turn 1: an order producer that may XADD to the orders streams and nothing else."""

from helpers.production.security import key_pattern


def producer_rules():
    # A new user starts with no commands and no keys; grant the one command and the one
    # key pattern. Not +@write or +@stream: a category brings DEL, XTRIM, XRANGE... along.
    # %W~ (write-only key access) would do too: XADD only writes.
    return ["~" + key_pattern("orders"), "+xadd"]  # "~workshop:orders:*"
