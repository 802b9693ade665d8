"""The whole ingest: raw files -> ordered, labelled, split interactions with histories, item and
user tables, evaluation subsets, top-N candidates and a dataset card (all in memory, compact)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.ingest.card import group_stats, split_stats, subset_stats
from pipeline.ingest.columns import Columns, collect_reviews
from pipeline.ingest.config import ExpectedRows, IngestParams, SplitParams
from pipeline.ingest.histories import build_histories
from pipeline.ingest.lines import IngestError
from pipeline.ingest.raw_data import read_filtered
from pipeline.ingest.records import ItemMeta
from pipeline.ingest.samples import sample_rows, sample_subset, sample_topn_candidates
from pipeline.ingest import splitting
from pipeline.schemas import INTERACTIONS, ITEMS, SPLITS, SUBSET_ROWS, TOPN_CANDIDATES, USERS


@dataclass(frozen=True)
class IngestOutput:
    interactions: pa.Table  # INTERACTIONS
    items: pa.Table  # ITEMS
    users: pa.Table  # USERS
    subsets: pa.Table  # SUBSET_ROWS
    topn_candidates: pa.Table  # TOPN_CANDIDATES
    card: dict


def run_ingest(params: IngestParams) -> IngestOutput:
    data = read_filtered(params)
    columns, split, windows, after_windows = order_and_split(data.columns, params.split)
    require_expected_rows(split, params.expected_rows)
    columns, user_raw, item_raw, metas = contiguous_ids(columns, data.metadata)
    label = (columns.rating >= params.label_threshold).astype(np.int8)
    require_both_labels(label, split, columns.rating, params.label_threshold)
    reviews = None
    if params.keep_reviews and data.format.has_reviews:
        text = collect_reviews(data.format.read_interactions, data.interactions_path, columns.line)
        reviews = [text.get(line, "") for line in columns.line.tolist()]
    interactions = interactions_table(columns, label, split, params.history_length, reviews)
    rng = np.random.default_rng(params.seed)
    subsets = evaluation_subsets(columns.user, split, params, rng)
    topn, short = topn_table(columns, label, split, len(item_raw), params.topn_negatives, rng, params.topn_users)
    data.card["filters"]["rows_after_last_window_dropped"] = after_windows
    card = {
        **data.card,
        "label_threshold": params.label_threshold,
        "history_length": params.history_length,
        "split": {**params.split.model_dump(), "windows": windows},
        "totals": group_stats(columns.user, columns.item, label),
        "splits": split_stats(columns.user, columns.item, label, split),
        "subsets": subset_stats(subsets, columns.user, columns.item, label),
        "topn": {"users": int(np.sum(topn.column("positive").to_numpy())), "rows": topn.num_rows,
                 "negatives_per_user": params.topn_negatives, "users_with_fewer_negatives": short},
        "reviews_kept": reviews is not None,
    }
    return IngestOutput(
        interactions, items_table(item_raw, metas), users_table(user_raw), subsets_table(subsets), topn, card
    )


def order_and_split(columns: Columns, params: SplitParams) -> tuple[Columns, np.ndarray, dict, int]:
    """Rows in global time order with split codes (0/1/2); rows after the last window dropped."""
    order = splitting.time_order(
        columns.timestamp, splitting.raw_id_rank(columns.user_ids)[columns.user],
        splitting.raw_id_rank(columns.item_ids)[columns.item], columns.line,
    )
    columns = columns.take(order)
    if params.mode == "months":
        split, windows = splitting.split_by_months(
            columns.timestamp, params.train_months, params.valid_months, params.test_months
        )
    elif params.mode == "last_months_halved":
        split, windows = splitting.split_last_months_halved(columns.timestamp, params.train_months)
    else:
        split, windows = splitting.split_leave_one_out(columns.user), {}
    kept = split != splitting.UNASSIGNED
    columns, split = columns.take(kept), split[kept]
    for code, name in enumerate(SPLITS):
        if not (split == code).any():
            raise IngestError(
                f"ingest.split: split '{name}' is empty (mode {params.mode}, windows {windows}; data spans "
                f"{splitting.month_start(int(splitting.month_index(columns.timestamp).min()))} onwards)"
            )
    return columns, split, windows, int((~kept).sum())


def require_both_labels(label: np.ndarray, split: np.ndarray, rating: np.ndarray, threshold: float) -> None:
    """Every split needs liked and not-liked rows: without one of them no AUC or BCE means anything."""
    for code, name in enumerate(SPLITS):
        rows = split == code
        liked = int(label[rows].sum())
        if liked in (0, int(rows.sum())):
            low, high = float(rating[rows].min()), float(rating[rows].max())
            missing, side = ("positive", "below") if liked == 0 else ("negative", "at or above")
            raise IngestError(
                f"ingest.label_threshold: split '{name}' has no {missing} label: all its {int(rows.sum())} ratings "
                f"({low:g} .. {high:g}) are {side} the threshold {threshold:g}; choose a threshold inside the ratings"
            )


def require_expected_rows(split: np.ndarray, expected: ExpectedRows) -> None:
    """The split's rows per split against the counts a recipe reports (ingest.expected_rows): a
    split other than the recipe's is an error here, before anything trains on it."""
    counts = {name: int(np.sum(split == code)) for code, name in enumerate(SPLITS)}
    wanted = expected.model_dump()
    off = [name for name in SPLITS if wanted[name] is not None and wanted[name] != counts[name]]
    if off:
        got = "/".join(f"{counts[name]:,}" for name in SPLITS)
        want = "/".join("-" if wanted[name] is None else f"{wanted[name]:,}" for name in SPLITS)
        raise IngestError(
            f"ingest.expected_rows: the split has {got} train/valid/test rows, the recipe's {want} "
            f"({', '.join(off)} differ): the raw files, ingest.time_range, ingest.filter or ingest.split are not the "
            f"recipe's (null counts in ingest.expected_rows run this split unchecked)"
        )


def contiguous_ids(columns: Columns, metadata: dict[int, ItemMeta]) -> tuple[Columns, list[str], list[str], list[ItemMeta]]:
    """Renumber users and items 0..n-1 in order of first appearance in time; return raw ids and
    item metadata in the new order."""
    user_order, user_code = _first_appearance(columns.user)
    item_order, item_code = _first_appearance(columns.item)
    renumbered = Columns(
        user_code, item_code, columns.rating, columns.timestamp, columns.line,
        [columns.user_ids[old] for old in user_order], [columns.item_ids[old] for old in item_order],
    )
    return renumbered, renumbered.user_ids, renumbered.item_ids, [metadata[old] for old in item_order]


def _first_appearance(codes: np.ndarray) -> tuple[list[int], np.ndarray]:
    unique, first = np.unique(codes, return_index=True)
    order = unique[np.argsort(first)]
    remap = np.full(int(codes.max()) + 1, -1, dtype=np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return order.tolist(), remap[codes]


def interactions_table(
    columns: Columns, label: np.ndarray, split: np.ndarray, history_length: int, reviews: list[str] | None
) -> pa.Table:
    history_items, history_labels = build_histories(columns.user, columns.item, label, history_length)
    return pa.table(
        {
            "row": np.arange(len(columns), dtype=np.int64),
            "user": columns.user, "item": columns.item, "rating": columns.rating, "label": label,
            "timestamp": columns.timestamp,
            "split": pa.array(np.asarray(SPLITS, dtype=object)[split]),
            "history_items": history_items, "history_labels": history_labels,
            "review": pa.array(reviews if reviews is not None else [None] * len(columns), pa.string()),
        },
        schema=INTERACTIONS,
    )


def items_table(raw_ids: list[str], metas: list[ItemMeta]) -> pa.Table:
    return pa.table(
        {
            "item": np.arange(len(raw_ids), dtype=np.int32), "raw_id": raw_ids,
            "title": [meta.title for meta in metas], "categories": [meta.categories for meta in metas],
            "description": [meta.description for meta in metas], "extra": [meta.extra for meta in metas],
        },
        schema=ITEMS,
    )


def users_table(raw_ids: list[str]) -> pa.Table:
    return pa.table({"user": np.arange(len(raw_ids), dtype=np.int32), "raw_id": raw_ids}, schema=USERS)


def evaluation_subsets(user: np.ndarray, split: np.ndarray, params: IngestParams, rng) -> dict[str, np.ndarray]:
    """valid_small and test_small sample users (or rows) of their split; test_tiny samples test_small rows."""
    valid_small = sample_subset(np.flatnonzero(split == 1), user, params.subsets.valid_small, rng)
    test_small = sample_subset(np.flatnonzero(split == 2), user, params.subsets.test_small, rng)
    test_tiny = sample_rows(test_small, params.subsets.test_tiny_rows, rng)
    return {"valid_small": valid_small, "test_small": test_small, "test_tiny": test_tiny}


def subsets_table(subsets: dict[str, np.ndarray]) -> pa.Table:
    names = [name for name, rows in subsets.items() for _ in range(len(rows))]
    rows = np.concatenate(list(subsets.values())).astype(np.int64)
    return pa.table({"subset": names, "row": rows}, schema=SUBSET_ROWS)


def topn_table(
    columns: Columns, label, split, n_items: int, negatives: int, rng, max_users: int | None
) -> tuple[pa.Table, int]:
    user, item, positive, row, short = sample_topn_candidates(
        columns.user, columns.item, label, split == 2, n_items, negatives, rng, max_users
    )
    table = pa.table({"user": user, "item": item, "positive": positive, "row": row}, schema=TOPN_CANDIDATES)
    return table, short
