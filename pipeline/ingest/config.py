"""The ingest stage's parameters (params.yaml `ingest:`), validated; unknown keys are errors."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceParams(Strict):
    format: Literal["recbole", "ml100k", "ml1m", "amazon", "yelp"] = "recbole"
    path: str | None = None  # directory of the raw files; None = embedded ML-100k (recbole)
    name: str = "ml-100k"  # fills "{name}" in the default file names
    interactions_file: str | None = None  # None = the format's default name
    items_file: str | None = None


class TimeRangeParams(Strict):
    start: str | None = None  # ISO date, UTC, inclusive
    end: str | None = None  # ISO date, UTC, exclusive


class FilterParams(Strict):
    mode: Literal["none", "one_pass", "k_core"] = "none"
    min_user_interactions: int = Field(1, ge=1)  # keep users with >= this many
    min_item_interactions: int = Field(1, ge=1)


class SplitParams(Strict):
    mode: Literal["months", "last_months_halved", "leave_one_out"] = "months"
    train_months: int = Field(6, ge=1)
    valid_months: int = Field(1, ge=0)
    test_months: int = Field(1, ge=0)


class SubsetParams(Strict):
    user_fraction: float = Field(0.25, gt=0, le=1)
    max_rows_per_user: int | None = Field(None, ge=1)
    max_rows: int | None = Field(None, ge=1)


class SubsetsParams(Strict):
    valid_small: SubsetParams = SubsetParams()
    test_small: SubsetParams = SubsetParams()
    test_tiny_rows: int = Field(200, ge=1)


class IngestParams(Strict):
    source: SourceParams = SourceParams()
    label_threshold: float = 4
    history_length: int = Field(25, ge=0)
    seed: int = 2026
    keep_reviews: bool = False
    max_text_words: int = Field(100, ge=1)
    on_bad_line: Literal["error", "skip"] = "error"
    on_unknown_item: Literal["error", "skip"] = "error"
    time_range: TimeRangeParams = TimeRangeParams()
    filter: FilterParams = FilterParams()
    split: SplitParams = SplitParams()
    subsets: SubsetsParams = SubsetsParams()
    topn_negatives: int = Field(99, ge=1)
    topn_users: int | None = Field(None, ge=1)
