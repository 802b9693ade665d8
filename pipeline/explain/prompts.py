"""The reference-trace rows as the prompts a trained variant was trained on."""
from __future__ import annotations

import pandas as pd

from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.rec.examples import RecExample, build_catalog, build_examples, load_cf_vectors
from pipeline.rec.model import RecModel
from pipeline.rec.prompts import get_template
from pipeline.rec.recipe import PromptParams, RecInputs, VariantSpec


def reference_rows(traces_path, interactions: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """The first `n_rows` reference traces (by row id) joined to their interactions: INTERACTIONS
    columns + `trace`. A trace whose row is not in the interactions is an error."""
    traces = read_frame(traces_path, schemas.TRACES).sort_values("row").head(n_rows)
    if traces.empty:
        raise ValueError(f"{traces_path}: no reference traces")
    joined = traces[["row", "trace"]].merge(interactions, on="row", how="left", indicator=True)
    missing = joined.loc[joined["_merge"] != "both", "row"]
    if len(missing):
        raise KeyError(f"{traces_path}: row {int(missing.iloc[0])} is not in interactions.parquet")
    return joined.drop(columns="_merge").reset_index(drop=True)


def variant_examples(
    spec: VariantSpec, prompt: PromptParams, inputs: RecInputs, rec: RecModel, frame: pd.DataFrame
) -> list[RecExample]:
    """Prompts of `frame`'s rows in `spec`'s form (keywords and CF slots as the variant was
    trained), answers left as the labels' Yes/No (they are not used for generation)."""
    vectors = load_cf_vectors(inputs.user_vectors, inputs.item_vectors, spec.name) if spec.cf_slots else None
    keywords = read_frame(inputs.keywords, schemas.ITEM_KEYWORDS) if spec.keywords else None
    catalog = build_catalog(
        read_frame(inputs.items, schemas.ITEMS), keywords, prompt.title_words,
        prompt.keywords_per_item if spec.keywords else 0,
    )
    return build_examples(
        frame, catalog, rec.tokenizer, get_template(prompt.version), prompt.history_items, vectors,
        None, prompt.max_answer_tokens, f"encode {spec.name}",
    )
