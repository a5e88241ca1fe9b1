"""Notebook 05, your turn 2: region boards whose ZUNIONSTORE works on a Redis Cluster."""

from helpers.keyspace import key


def region_board_key(week, region):
    # Only the part between the first { and } is hashed: the week. So one week's boards
    # (and their union, one more "region") share a slot, and each week picks its own slot:
    # the weeks spread over the nodes. A region inside the braces would split the week again.
    return key("lb", "{" + week + "}", region)
