"""Declared schemas of every artifact that crosses a stage boundary.

Ids: `user` and `item` are contiguous int32 ids assigned by ingest (0..n-1); the dataset's own ids
are kept as strings in `raw_id`. `row` is the int64 id of an interaction: its position in global
time order (ties broken by raw user id, then raw item id), so it is stable across runs.
"""
from typing import Sequence

import numpy as np
import pyarrow as pa

from pipeline.errors import BadInput

SPLITS = ("train", "valid", "test")
SUBSETS = ("valid_small", "test_small", "test_tiny")

# data/ingest/interactions.parquet: one row per kept interaction, in `row` order.
INTERACTIONS = pa.schema(
    [
        ("row", pa.int64()),
        ("user", pa.int32()),
        ("item", pa.int32()),
        ("rating", pa.float32()),
        ("label", pa.int8()),  # 1 = liked (rating >= the dataset's threshold), 0 = not
        ("timestamp", pa.int64()),  # seconds since the Unix epoch, UTC
        ("split", pa.string()),  # one of SPLITS
        # The user's earlier interactions (any split), oldest first, at most ingest.history_length.
        ("history_items", pa.list_(pa.int32())),
        ("history_labels", pa.list_(pa.int8())),
        ("review", pa.string()),  # review text when the dataset has one, else null
    ]
)

# data/ingest/items.parquet
ITEMS = pa.schema(
    [
        ("item", pa.int32()),
        ("raw_id", pa.string()),
        ("title", pa.string()),
        ("categories", pa.list_(pa.string())),  # genres / categories, most general first
        ("description", pa.string()),  # free text ("" when the dataset has none)
        ("extra", pa.string()),  # brand, address, release year...: short, "" when absent
    ]
)

# data/ingest/users.parquet
USERS = pa.schema([("user", pa.int32()), ("raw_id", pa.string())])

# data/ingest/subsets.parquet: fixed-seed evaluation samples (SUBSETS) as (subset, row) pairs.
SUBSET_ROWS = pa.schema([("subset", pa.string()), ("row", pa.int64())])

# data/ingest/topn_candidates.parquet: sampled top-N task, one positive + sampled negatives
# (items the user never interacted with) per test user; `positive` marks the held-out item; `row`
# is the positive's interaction row, whose history every candidate prompt of the user shows.
TOPN_CANDIDATES = pa.schema(
    [("user", pa.int32()), ("item", pa.int32()), ("positive", pa.int8()), ("row", pa.int64())]
)

# data/cf/<model>/user_vectors.parquet and item_vectors.parquet
USER_VECTORS = pa.schema([("user", pa.int32()), ("vector", pa.list_(pa.float32()))])
ITEM_VECTORS = pa.schema([("item", pa.int32()), ("vector", pa.list_(pa.float32()))])
# data/cf/<model>/row_user_vectors.parquet (sequential models only): the user's state before each
# interaction row, encoded from that row's own history (what the model scores the row with)
ROW_USER_VECTORS = pa.schema([("row", pa.int64()), ("vector", pa.list_(pa.float32()))])

# data/predictions/<model>.parquet: scores of one model. Pointwise rows carry their interaction
# `row`; top-N candidate scores carry row = -1. Higher score = more likely liked.
PREDICTIONS = pa.schema(
    [
        ("row", pa.int64()),
        ("user", pa.int32()),
        ("item", pa.int32()),
        ("score", pa.float32()),
    ]
)

# data/ranking/<model>.parquet: full-catalogue ranking (pipeline/ranking; docs/evaluation.md,
# "Full-catalogue ranking"): one row per (task, user, held-out target). Each evaluated user's
# candidates are every catalogue item they had not interacted with before their first test row;
# `rank` is the target's 0-based position in the model's ranked list of those candidates (items
# tied with it count above it), -1 when the model did not rank it (a re-ranker's retriever left it
# out of its top K); `candidates` is how many items the model's list holds. Tasks: "topn" (every
# liked test item of the user), "next" (the item of the user's first test row, any label).
RANKS = pa.schema(
    [
        ("task", pa.string()),
        ("user", pa.int32()),
        ("item", pa.int32()),
        ("rank", pa.int64()),
        ("candidates", pa.int32()),
    ]
)
# data/ranking/<model>_candidates.parquet: a re-ranker's scores of the retriever's top K per user,
# beside the retriever's own score and rank (1 = best) of each
RERANKED = pa.schema(
    [("user", pa.int32()), ("item", pa.int32()), ("retriever_rank", pa.int32()),
     ("retriever_score", pa.float32()), ("score", pa.float32())]
)

# data/keywords/item_keywords.parquet
ITEM_KEYWORDS = pa.schema(
    [
        ("item", pa.int32()),
        ("keywords", pa.list_(pa.string())),  # at most keywords.max_keywords, cleaned
        ("source", pa.string()),  # "llm" or "fallback" (categories used instead)
    ]
)

# data/traces/traces.parquet and data/traces/gold_traces.parquet
TRACES = pa.schema(
    [
        ("row", pa.int64()),
        ("label", pa.int8()),
        ("trace", pa.string()),  # "<Yes|No>. <reasoning with whitespace collapsed>"
        ("rounds", pa.int32()),  # teacher calls until verified (1 = right first time)
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
    ]
)

# data/rationales/rationales.parquet (RDRec)
RATIONALES = pa.schema(
    [
        ("row", pa.int64()),
        ("user_preference", pa.string()),
        ("item_attributes", pa.string()),
        ("source", pa.string()),  # "llm", or "fallback" when the answer could not be parsed
        ("input_kind", pa.string()),  # "review", or "metadata" for datasets without reviews
    ]
)

# data/explanations/explanations.parquet: reasoning written by a trained LLM recommender for the
# gold-trace rows, with per-row scores against the teacher's gold trace.
EXPLANATIONS = pa.schema(
    [
        ("row", pa.int64()),
        ("model", pa.string()),  # variant name: thinkrec, tallrec, ...
        ("explanation", pa.string()),  # the model's greedy output
        ("gold", pa.string()),  # the teacher's "<Yes|No>. <reasoning>" trace (gold_traces.parquet)
        ("bleu4", pa.float32()),  # sentence BLEU-4, smoothed (Chen & Cherry method 1)
        ("rouge_l", pa.float32()),  # ROUGE-L F1
        ("meteor", pa.float32()),  # METEOR, exact + Porter-stem matches
        ("bertscore_f1", pa.float32()),  # BERTScore F1 on all-MiniLM-L6-v2
    ]
)

# data/experts/clusters/user_clusters.parquet: the cluster of each clustered user (experts.cluster_users:
# those with train rows, or every user; the others' rows go where experts.cold says)
USER_CLUSTERS = pa.schema([("user", pa.int32()), ("cluster", pa.int32())])


# Columns that must hold finite numbers wherever an artifact of the schema is read
# (artifacts.read_table checks them): (schema, column, id columns an error names).
FINITE_COLUMNS = (
    (PREDICTIONS, "score", ("row", "user", "item")),
    (RERANKED, "score", ("user", "item")),
    (RERANKED, "retriever_score", ("user", "item")),
    (USER_VECTORS, "vector", ("user",)),
    (ITEM_VECTORS, "vector", ("item",)),
    (ROW_USER_VECTORS, "vector", ("row",)),
)


def finite_columns(schema: pa.Schema) -> list[tuple[str, tuple[str, ...]]]:
    """(column, id columns) of `schema` that must be finite (FINITE_COLUMNS)."""
    return [(column, ids) for known, column, ids in FINITE_COLUMNS if schema.equals(known)]


def require_finite(frame, column: str, where: str, ids: Sequence[str] = ()) -> None:
    """BadInput naming `where`, the first bad row (its position in the file, then its `ids`
    columns) and `column` when a value of `column` (a number, or a vector of numbers, per row) is
    NaN or infinite. CF vectors and prediction scores are read with it: such a value comes from a
    diverged training or a damaged file, and past the reader it turns every score NaN or surfaces
    as a misleading error ("no vector for item ...")."""
    values = frame[column].to_numpy()
    if values.dtype == object:  # a list column: one vector per row (None = no values)
        lengths = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)
        flat = np.concatenate([np.asarray(v, dtype=np.float64) for v in values if v is not None] or [np.zeros(0)])
    else:
        lengths, flat = np.ones(len(values), dtype=np.int64), values.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(flat))
    if not len(bad):
        return
    starts = np.cumsum(lengths) - lengths
    rows = np.searchsorted(starts, bad, side="right") - 1  # the row of each bad value
    first = int(rows[0])
    name = f"{column}[{bad[0] - starts[first]}]" if values.dtype == object else column
    named = ", ".join(f"{key} {frame[key].iloc[first]}" for key in ids)
    raise BadInput(f"{where}: row {first} of the file{f' ({named})' if named else ''}: {name} is {flat[bad[0]]}, "
                   f"not a finite number ({len(np.unique(rows))} of {len(values)} rows hold NaN or infinite values)")
