"""The gold-trace rows as the prompts a trained variant was trained on."""
from __future__ import annotations

import pandas as pd

from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.rec.data import RecInputs, load_variant_data, variant_encoder
from pipeline.rec.examples import RecExample
from pipeline.rec.model import RecModel
from pipeline.rec.params import PromptParams
from pipeline.rec.variants import VariantSpec


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


def variant_examples(
    spec: VariantSpec, prompt: PromptParams, inputs: RecInputs, rec: RecModel, frame: pd.DataFrame
) -> list[RecExample]:
    """Prompts of `frame`'s rows in `spec`'s form (keywords and CF slots as the variant was
    trained: the recipe's own encoder), answers left as the labels' Yes/No (unused here)."""
    data = load_variant_data(spec.without_traces(), inputs)
    return variant_encoder(spec, prompt, rec.tokenizer, data)(frame, None, f"encode {spec.name}")
