"""Notebook 02, your turn 3: settle one delivery: ack it, leave it for a retry, or dead-letter it."""


def settle(r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3):
    try:
        handler(entry_id, fields)
    except Exception as error:
        # how many times this entry has been delivered, this delivery included
        [pending] = r.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
        if pending["times_delivered"] < max_deliveries:
            return "retry"  # no XACK: it stays pending and comes back
        with r.pipeline(transaction=True) as pipe:  # both or neither: never lost, never twice
            pipe.xadd(
                dead_stream, {**fields, "original_id": entry_id, "error": f"{type(error).__name__}: {error}"}
            )
            pipe.xack(stream, group, entry_id)
            pipe.execute()
        return "dead"
    r.xack(stream, group, entry_id)
    return "acked"
