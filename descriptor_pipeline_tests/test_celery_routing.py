"""The Celery routing tables agree with the run queue, without a broker or a worker."""

from __future__ import annotations

from pathlib import Path

import yaml

from descriptor_pipeline.celery_app import app
from descriptor_pipeline.celery_routing import LANE_QUEUES, MODE_PRIORITY, QUEUE_TAG
from descriptor_pipeline.refresh.tags import BULK_MODES, TAG_LANE, run_tags

REPO = Path(__file__).resolve().parents[1]


def test_the_run_queue_lanes_and_the_celery_queues_agree() -> None:
    """No broker needed: the lanes `dagster.yaml` limits, every mode's tags and the queues the
    Celery app declares come from one table (celery_routing)."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    limited = {limit.get("value") for limit in config["concurrency"]["runs"][
        "tag_concurrency_limits"] if limit["key"] == TAG_LANE}
    assert limited and limited <= set(LANE_QUEUES)
    for mode in sorted({*MODE_PRIORITY, *BULK_MODES}):
        tags = run_tags(mode)
        assert tags[QUEUE_TAG] == LANE_QUEUES[tags[TAG_LANE]], mode
    assert {q.name: q.queue_arguments for q in app.conf.task_queues} == {
        q: {"x-max-priority": 10} for q in LANE_QUEUES.values()}
