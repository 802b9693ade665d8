"""From raw files to filtered compact columns: stream interactions (time range applied on the
fly), join item metadata, then the count filter. Records what each step removed for the card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.columns import Columns, collect_interactions, epoch_seconds
from pipeline.ingest.config import IngestParams
from pipeline.ingest.filtering import count_filter_mask
from pipeline.ingest.formats import FORMATS, Format, resolve_files
from pipeline.ingest.lines import IngestError, LineIssues
from pipeline.ingest.metadata import collect_items, drop_items_without_metadata
from pipeline.ingest.records import ItemMeta


@dataclass(frozen=True)
class FilteredData:
    columns: Columns  # kept interactions, file order
    metadata: dict[int, ItemMeta]  # item code -> metadata, for every item with kept rows
    card: dict  # the card's "source", "read" and "filters" sections
    format: Format
    interactions_path: Path


def read_filtered(params: IngestParams) -> FilteredData:
    source = params.source
    fmt = FORMATS[source.format]
    inter_path, items_path = resolve_files(
        source.format, source.path, source.name, source.interactions_file, source.items_file
    )
    bad = LineIssues(params.on_bad_line)
    unknown = LineIssues(params.on_unknown_item, "ingest.on_unknown_item")
    start = epoch_seconds(params.time_range.start, "ingest.time_range.start")
    end = epoch_seconds(params.time_range.end, "ingest.time_range.end")
    columns, outside = collect_interactions(fmt.read_interactions, inter_path, bad, start, end)
    parsed = len(columns) + outside
    _require_rows(columns, f"{inter_path}: no interactions inside ingest.time_range")
    metadata, meta_counts = collect_items(fmt.read_items, items_path, bad, unknown, columns, params.max_text_words)
    columns, without_meta = drop_items_without_metadata(columns, metadata, params.on_unknown_item, inter_path, items_path)
    keep, rounds = count_filter_mask(
        columns.user, columns.item, params.filter.mode,
        params.filter.min_user_interactions, params.filter.min_item_interactions,
    )
    columns = columns.take(keep)
    _require_rows(columns, f"{inter_path}: no interactions left after ingest.filter ({params.filter.mode})")
    card = {
        "source": {"format": source.format, "interactions_file": str(inter_path), "items_file": str(items_path)},
        "read": {
            "interaction_rows_parsed": parsed,
            "bad_lines_skipped": dict(bad.counts),
            "bad_line_examples": bad.examples,
            "unknown_items_skipped": dict(unknown.counts),
            "unknown_item_examples": unknown.examples,
            "rows_without_item_metadata_dropped": without_meta,
            **dict(meta_counts),
        },
        "filters": {
            "time_range": {"start": params.time_range.start, "end": params.time_range.end, "rows_outside": outside},
            "count_filter": {**params.filter.model_dump(), "rounds": rounds, "rows_dropped": int((~keep).sum())},
        },
    }
    return FilteredData(columns, metadata, card, fmt, inter_path)


def _require_rows(columns: Columns, message: str) -> None:
    if len(columns) == 0:
        raise IngestError(message)
