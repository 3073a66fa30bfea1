"""Which Celery queue and priority a run's steps get, derived from its lane (plain strings).

One table for the run-queue lanes of `dagster.yaml` (`descriptor/lane`) and the Celery queues
the workers listen on, so the two cannot drift apart. No celery import: the in-process default
tags its runs the same way and never loads Celery.
"""

from __future__ import annotations

QUEUE_TAG = "dagster-celery/queue"  # dagster-celery's tag names
RUN_PRIORITY_TAG = "dagster-celery/run_priority"
# lane (refresh.tags.run_tags) -> Celery queue
LANE_QUEUES = {"fresh": "interactive", "bulk": "bulk"}
QUEUES = tuple(LANE_QUEUES.values())
# Runs without a queue tag (UI backfills and launchpad runs) go to the bulk queue.
DEFAULT_QUEUE = "bulk"
# Added to the step priority (5) by dagster-celery; RabbitMQ queues hold priorities 0..10.
MODE_PRIORITY = {"targeted": 4, "replay": 4, "incremental": 3, "fanout": 2, "growth": 1}


def celery_tags(lane: str, mode: str) -> dict[str, str]:
    """The dagster-celery routing tags for a run of `mode` on `lane`."""
    return {
        QUEUE_TAG: LANE_QUEUES[lane],
        RUN_PRIORITY_TAG: str(MODE_PRIORITY.get(mode, 0)),
    }
