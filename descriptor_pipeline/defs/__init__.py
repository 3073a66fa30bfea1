"""Dagster definitions, one module per concern; `descriptor_pipeline.definitions` assembles them."""
