"""Celery tasks of tracking: beat runs the recorder every few seconds (`tracking.flush`), so hits
are recorded within seconds with no service of their own (`make run`); docker-compose's
`tracking-recorder` runs it as a loop too, and whichever holds the recorder's lock works while
the other returns at once."""

from __future__ import annotations

from crm.celery_app import app
from tracking import flush


@app.task(name="tracking.tasks.hits_flush", ignore_result=True)
def hits_flush() -> dict[str, int | bool]:
    """Beat: record the buffered hits (at most ~4 s of work; the next beat goes on)."""
    outcome = flush.hits_flush(seconds=4.0)
    return {
        "busy": outcome.busy,
        "read": outcome.read,
        "recorded": outcome.recorded,
        "dropped": outcome.dropped,
        "failed": outcome.failed,
    }
