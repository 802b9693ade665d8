"""From raw files to filtered compact columns: stream interactions (time range applied on the
fly), join item metadata, then the count filter. Records what each step removed for the card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.columns import Columns, collect_interactions
from pipeline.ingest.config import IngestParams
from pipeline.ingest.duplicates import apply_duplicate_policy
from pipeline.ingest.filtering import count_filter_mask
from pipeline.ingest.formats import FORMATS, Format, resolve_files
from pipeline.ingest.lines import IngestError, LineIssues
from pipeline.ingest.metadata import collect_items, drop_items_without_metadata
from pipeline.ingest.records import ItemMeta, TextLimit
from pipeline.ingest.validation import LineChecks, epoch_seconds


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
    files = resolve_files(source.format, source.path, source.name, source.interactions_file, source.items_file)
    inter_path, items_path = files.interactions, files.items
    bad = LineIssues(params.on_bad_line)
    unknown = LineIssues(params.on_unknown_item, "ingest.on_unknown_item")
    scale = params.rating_scale or fmt.rating_scale
    checks = LineChecks(inter_path, bad, params.timestamps, scale, fmt)
    start = epoch_seconds(params.time_range.start, "ingest.time_range.start")
    end = epoch_seconds(params.time_range.end, "ingest.time_range.end")
    columns, outside = collect_interactions(fmt.read_interactions, inter_path, bad, checks, start, end)
    parsed = len(columns) + outside
    if not parsed:
        raise IngestError(f"{inter_path}: no usable interaction lines ({bad.total()} bad lines skipped)")
    if start is not None or end is not None:
        _require_rows(columns, f"{inter_path}: none of the {parsed} interactions read is inside ingest.time_range "
                               f"({params.time_range.start} .. {params.time_range.end})")
    columns, duplicates = apply_duplicate_policy(columns, params.duplicates, inter_path)
    metadata, meta_counts = collect_items(fmt.read_items, items_path, bad, unknown, columns,
                                        TextLimit(params.max_text_words, params.max_text_chars))
    columns, without_meta = drop_items_without_metadata(columns, metadata, params.on_unknown_item, inter_path, items_path)
    keep, rounds = count_filter_mask(
        columns.user, columns.item, params.filter.mode,
        params.filter.min_user_interactions, params.filter.min_item_interactions,
    )
    columns = columns.take(keep)
    _require_rows(columns, f"{inter_path}: no interactions left after ingest.filter ({params.filter.mode})")
    def shown(messages: list[str]) -> list[str]:  # examples name files as the card does
        return [m.replace(str(inter_path), files.shown[0]).replace(str(items_path), files.shown[1]) for m in messages]

    duplicates["examples"] = shown(duplicates["examples"])
    card = {
        "source": {"format": source.format, "interactions_file": files.shown[0], "items_file": files.shown[1]},
        "read": {
            "interaction_rows_parsed": parsed,
            "bad_lines_skipped": dict(bad.counts),
            "bad_line_examples": shown(bad.examples),
            "timestamp_units": dict(checks.unit_counts),  # lines read in s / ms / us
            "rating_scale": list(scale),
            "duplicates": duplicates,
            "unknown_items_skipped": dict(unknown.counts),
            "unknown_item_examples": shown(unknown.examples),
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
