"""The ingest stage's parameters (params.yaml `ingest:`), validated; unknown and missing keys are
errors (params.yaml holds every default)."""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from pipeline.ingest.validation import epoch_seconds
from pipeline.params import Strict


class SourceParams(Strict):
    format: Literal["recbole", "ml100k", "ml1m", "amazon", "yelp"]
    # Directory of the raw files, or an embedded-dataset pin (*.embedded.json); None = the
    # built-in pin of ML-100k inside the installed recbole package (pipeline/ingest/embedded.py).
    path: str | None
    name: str  # fills "{name}" in the default file names
    interactions_file: str | None  # None = the format's default name
    items_file: str | None


class TimeRangeParams(Strict):
    start: str | None  # ISO date, UTC, inclusive
    end: str | None  # ISO date, UTC, exclusive


class TimestampParams(Strict):
    unit: Literal["auto", "s", "ms", "us"]  # auto: per line, the unit that lands inside the range
    earliest: str  # ISO date, UTC: an earlier timestamp is a bad line
    latest: str  # ISO date, UTC, exclusive: a later timestamp is a bad line

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
    mode: Literal["none", "one_pass", "k_core"]
    min_user_interactions: int = Field(ge=1)  # keep users with >= this many
    min_item_interactions: int = Field(ge=1)


class SplitParams(Strict):
    mode: Literal["months", "last_months_halved", "leave_one_out"]
    train_months: int = Field(ge=1)
    valid_months: int = Field(ge=0)
    test_months: int = Field(ge=0)


class SubsetParams(Strict):
    user_fraction: float = Field(gt=0, le=1)
    max_rows_per_user: int | None = Field(ge=1)
    max_rows: int | None = Field(ge=1)
    # None = sample users (the three keys above); else this fraction of the split's rows, uniformly
    row_fraction: float | None = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _one_way_to_sample(self) -> "SubsetParams":
        if self.row_fraction is None:
            return self
        user_keys = {"user_fraction": (self.user_fraction, 1.0), "max_rows_per_user": (self.max_rows_per_user, None),
                     "max_rows": (self.max_rows, None)}
        set_keys = [f"{key} is {value}" for key, (value, unset) in user_keys.items() if value != unset]
        if set_keys:
            raise ValueError(
                f"row_fraction {self.row_fraction} samples rows, not users: set user_fraction 1.0, "
                f"max_rows_per_user null and max_rows null with it ({', '.join(set_keys)})"
            )
        return self


class SubsetsParams(Strict):
    valid_small: SubsetParams
    test_small: SubsetParams
    test_tiny_rows: int = Field(ge=1)


class ExpectedRows(Strict):
    """The split's row counts a published recipe reports, checked after the split; a count left
    null is not checked."""

    train: int | None = Field(ge=0)
    valid: int | None = Field(ge=0)
    test: int | None = Field(ge=0)


class IngestParams(Strict):
    source: SourceParams
    label_threshold: float = Field(allow_inf_nan=False)
    history_length: int = Field(ge=0)
    seed: int
    keep_reviews: bool
    max_text_words: int = Field(ge=1)
    max_text_chars: int = Field(ge=1)  # a text without spaces (CJK) is one word: bound it here too
    on_bad_line: Literal["error", "skip"]
    on_unknown_item: Literal["error", "skip"]
    timestamps: TimestampParams
    # [min, max] ratings allowed (inclusive); None = the format's scale (every built-in one: 1-5)
    rating_scale: tuple[float, float] | None
    duplicates: Literal["keep", "drop", "error"]  # rows repeating a (user, item) pair
    time_range: TimeRangeParams
    filter: FilterParams
    split: SplitParams
    subsets: SubsetsParams
    expected_rows: ExpectedRows
    topn_negatives: int = Field(ge=1)
    topn_users: int | None = Field(ge=1)

    @model_validator(mode="after")
    def _scale(self) -> "IngestParams":
        if self.rating_scale is not None:
            low, high = self.rating_scale
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"ingest.rating_scale: {list(self.rating_scale)} is not a finite [min, max]")
        return self
