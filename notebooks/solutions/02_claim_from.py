"""Notebook 02, your turn 2: take over what a dead consumer left pending, and only that."""


def claim_from(r, stream, group, dead, me, min_idle_ms):
    claimed = []
    while True:
        # dead's pending entries, idle for long enough, one page at a time
        page = r.xpending_range(stream, group, "-", "+", count=100, consumername=dead, idle=min_idle_ms)
        if not page:
            return claimed
        # XCLAIM checks the idle time again: an entry someone else just claimed is left alone.
        # (XAUTOCLAIM with its cursor also works, but it takes idle entries from every consumer.)
        entries = r.xclaim(stream, group, me, min_idle_ms, [p["message_id"] for p in page])
        claimed += [entry_id for entry_id, _fields in entries]
