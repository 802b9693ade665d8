"""The ingest stage's parameters (params.yaml `ingest:`), validated; unknown keys are errors."""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.ingest.validation import epoch_seconds


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceParams(Strict):
    format: Literal["recbole", "ml100k", "ml1m", "amazon", "yelp"] = "recbole"
    # Directory of the raw files, or an embedded-dataset pin (*.embedded.json); None = the
    # built-in pin of ML-100k inside the installed recbole package (pipeline/ingest/embedded.py).
    path: str | None = None
    name: str = "ml-100k"  # fills "{name}" in the default file names
    interactions_file: str | None = None  # None = the format's default name
    items_file: str | None = None


class TimeRangeParams(Strict):
    start: str | None = None  # ISO date, UTC, inclusive
    end: str | None = None  # ISO date, UTC, exclusive


class TimestampParams(Strict):
    unit: Literal["auto", "s", "ms", "us"] = "auto"  # auto: per line, the unit that lands inside the range
    earliest: str = "1995-01-01"  # ISO date, UTC: an earlier timestamp is a bad line
    latest: str = "2050-01-01"  # ISO date, UTC, exclusive: a later timestamp is a bad line

    @model_validator(mode="after")
    def _plausible(self) -> "TimestampParams":
        first = epoch_seconds(self.earliest, "ingest.timestamps.earliest")
        last = epoch_seconds(self.latest, "ingest.timestamps.latest")
        if first >= last:
            raise ValueError(f"ingest.timestamps: earliest {self.earliest} is not before latest {self.latest}")
        if self.unit == "auto" and last > 1000 * first:
            # seconds and milliseconds of the range would overlap: a value could be either
            raise ValueError(
                f"ingest.timestamps: unit auto needs latest < 1000 x earliest in epoch seconds "
                f"({self.earliest} .. {self.latest} is ambiguous); declare the unit (s, ms or us)"
            )
        return self


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
    timestamps: TimestampParams = TimestampParams()
    # [min, max] ratings allowed (inclusive); None = the format's scale (every built-in one: 1-5)
    rating_scale: tuple[float, float] | None = None
    duplicates: Literal["keep", "drop", "error"] = "error"  # rows repeating a (user, item) pair
    time_range: TimeRangeParams = TimeRangeParams()
    filter: FilterParams = FilterParams()
    split: SplitParams = SplitParams()
    subsets: SubsetsParams = SubsetsParams()
    topn_negatives: int = Field(99, ge=1)
    topn_users: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _scale(self) -> "IngestParams":
        if self.rating_scale is not None:
            low, high = self.rating_scale
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"ingest.rating_scale: {list(self.rating_scale)} is not a finite [min, max]")
        return self
