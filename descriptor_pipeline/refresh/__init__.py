"""Async refresh as plain functions; the sensors and schedules in `defs/` only wire them to Dagster.

Nothing in this package imports dagster, so the cursor math and the queue's batching are testable
(and usable from a CLI) alone. One module per concern:

- `tags`: the run tags every refresh run carries, and the `descriptor/ids` scope of a run.
- `settings`: `RefreshSettings`, the bounds of one sensor tick and the incremental safety window.
- `changes`: incremental change detection (the incremental sensor's cursor) and the linked
  resources whose documents embed a changed one (`dependants_of`, the fan-out). Its catalog
  queries are `descriptor_pipeline.catalog_changes`.
- `queue`: the append-only refresh queue (`descriptor_refresh_queue`): append, read in batches
  after a cursor, prune. Its SQL is the queue's store and lives only there.
- `requests`: targeted reindex requests (`descriptor_refresh_requests`), the public way for
  another service to ask for a reindex, moved into the queue by `intake_requests`.
- `reconcile`: what one partition's catalog and index disagree about.

The two tables are declared with every other table in `descriptor_pipeline/tables.py`; id ranges
are mapped to partitions by `id_ranges.RangeLookup`.
"""
