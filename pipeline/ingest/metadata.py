"""Joining item metadata to the interactions: keep metadata only for items that have rows, and
handle ids present on one side only (error naming file and line/id, or skip and count)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.ingest.columns import Columns
from pipeline.ingest.formats import ItemReader
from pipeline.ingest.lines import IngestError, LineIssues, quoted
from pipeline.ingest.records import ItemMeta, TextLimit


def collect_items(
    read: ItemReader, path: Path, issues: LineIssues, unknown: LineIssues, columns: Columns, limit: TextLimit
) -> tuple[dict[int, ItemMeta], Counter[str]]:
    """Item code -> metadata for items with kept rows. Metadata of items no interaction mentions is
    reported to `unknown`; items seen only outside the time range are ignored (counted)."""
    codes = {raw: code for code, raw in enumerate(columns.item_ids)}
    has_rows = np.bincount(columns.item, minlength=len(columns.item_ids)) > 0
    found: dict[int, ItemMeta] = {}
    counts: Counter[str] = Counter()
    for meta in read(path, issues, limit):
        code = codes.get(meta.item)
        if code is None:
            unknown.report(f"{path}:{meta.line}", f"unknown_item: metadata for item {quoted(meta.item)} that no interaction has")
        elif not has_rows[code]:
            counts["metadata_for_items_without_kept_rows"] += 1
        elif code in found:
            counts["duplicate_metadata_lines"] += 1
        else:
            found[code] = meta
    return found, counts


def drop_items_without_metadata(
    columns: Columns, found: dict[int, ItemMeta], policy: str, inter_path: Path, items_path: Path
) -> tuple[Columns, int]:
    """Drop rows whose item has no metadata (policy 'skip'), or raise naming the first such row."""
    has_meta = np.zeros(len(columns.item_ids), dtype=bool)
    has_meta[list(found)] = True
    missing = ~has_meta[columns.item]
    if not missing.any():
        return columns, 0
    if policy == "error":
        first = int(np.flatnonzero(missing)[0])
        raw = columns.item_ids[columns.item[first]]
        raise IngestError(
            f"{inter_path}:{columns.line[first]}: item {quoted(raw)} has no metadata in {items_path} "
            f"({int(missing.sum())} rows affected; set ingest.on_unknown_item: skip to drop and count them)"
        )
    return columns.take(~missing), int(missing.sum())
