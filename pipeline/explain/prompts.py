"""The gold-trace rows the recommenders explain (the recommender's own encoder,
pipeline/rec/recommender.py, turns them into the prompts each was trained on)."""
from __future__ import annotations

import pandas as pd

from pipeline import schemas
from pipeline.artifacts import read_frame


def gold_rows(traces_path, interactions: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """The first `n_rows` gold traces (by row id) joined to their interactions: INTERACTIONS
    columns + `trace` (no rows when the teacher verified none). A trace whose row is not in the
    interactions is an error."""
    traces = read_frame(traces_path, schemas.TRACES).sort_values("row").head(n_rows)
    joined = traces[["row", "trace"]].merge(interactions, on="row", how="left", indicator=True)
    missing = joined.loc[joined["_merge"] != "both", "row"]
    if len(missing):
        raise KeyError(f"{traces_path}: row {int(missing.iloc[0])} is not in interactions.parquet")
    return joined.drop(columns="_merge").reset_index(drop=True)
