"""Asset checks (Great Expectations suites run per partition). Filled by the quality work."""

from __future__ import annotations

import dagster as dg

asset_checks: list[dg.AssetChecksDefinition] = []
jobs: list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition] = []
