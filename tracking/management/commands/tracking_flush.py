"""`manage.py tracking_flush`: the recorder as a loop (docker-compose's `tracking-recorder`):
waits up to a second for new hits, records them, and the spool now and then (`tracking.flush`).
Beat's task does the same every 5 s where no loop runs (`make run`); one holds the recorder's
lock at a time. SIGTERM and Ctrl-C end it after the pass in hand."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from tracking import flush

logger = logging.getLogger(__name__)

# Seconds one pass may take before the lock is let go (and the spool looked at).
PASS_SECONDS = 5.0
# Waiting for new hits, per read.
BLOCK_MS = 1000
# After an error (Redis or PostgreSQL away), wait this long before the next pass.
ERROR_PAUSE = 5.0


class Command(BaseCommand):
    help = "Record the buffered opens and clicks (tracking), in a loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        client = flush.redis_client()
        consumer = flush.consumer_name()
        while not stopping:
            try:
                outcome = flush.hits_flush(
                    seconds=PASS_SECONDS, block_ms=BLOCK_MS, consumer=consumer, client=client
                )
            except Exception:
                logger.exception("tracking: a recorder pass failed")
                close_old_connections()
                if options["once"]:
                    raise
                time.sleep(ERROR_PAUSE)
                continue
            if outcome.recorded or outcome.dropped or outcome.failed:
                logger.info(
                    "tracking: %d recorded, %d dropped, %d left for later",
                    outcome.recorded,
                    outcome.dropped,
                    outcome.failed,
                )
            if options["once"]:
                break
            if outcome.redis_down:
                time.sleep(ERROR_PAUSE)
            elif outcome.busy:
                time.sleep(1.0)  # another recorder works: look again in a moment
