"""The provenance stamp of a stage's metrics file (pipeline/provenance.py): the fingerprint of
data/ingest now and the params keys the stage declares in dvc.yaml (read by
pipeline/cli/stage_of.py, the one reader of dvc.yaml), with their values from params.yaml.

Not a stage: the stages that write metrics/*.json (and the CF stage's train_log.json) call
`stamped` on what they write. Run outside a DVC project (no dvc.yaml declaring the stage: the
tests' small projects), the stamp says the params are not recorded."""
from __future__ import annotations

import yaml

from pipeline import layout
from pipeline.cli.stage_of import declared_params
from pipeline.params import PARAMS_FILE
from pipeline.provenance import require_ingest_fingerprint, stamp


def stage_stamp(stage: str, dvc_metric: bool = False) -> dict:
    """The stamp of dvc.yaml stage `stage` (`cf@mf`, `expert@0` for foreach stages); `dvc_metric`:
    for a DVC metrics file, so the params values are left out (their hash stays)."""
    params = (yaml.safe_load(PARAMS_FILE.read_text()) or {}) if PARAMS_FILE.exists() else {}
    return stamp(require_ingest_fingerprint(layout.INGEST), declared_params(stage), params, dvc_metric)


def stamped(data: dict, stage: str, dvc_metric: bool = False) -> dict:
    """`data` with `stage_stamp(stage, dvc_metric)` merged in."""
    return {**data, **stage_stamp(stage, dvc_metric)}
