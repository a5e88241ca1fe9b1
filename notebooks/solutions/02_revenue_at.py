"""Notebook 02, your turn 1: the revenue at a moment in the past, replayed from the log."""

from decimal import Decimal


def revenue_at(r, stream, at_ms):
    total = Decimal(0)  # money: no binary rounding
    # Stream IDs are times. As the end of XRANGE, an ID of just milliseconds covers every entry
    # of that millisecond (at_ms-0, at_ms-1, ...), and the bounds are inclusive.
    for _entry_id, fields in r.xrange(stream, min="-", max=at_ms):
        if fields["action"] == "paid":
            total += Decimal(fields["total"])
    return total
