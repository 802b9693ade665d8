"""Sizes that depend on the dataset: every params key that counts rows, items or users of the data,
resolved against what the dataset has (data/ingest/card.json and the interactions' labels) and
checked before any teacher call is paid for (the `sizes` stage, right after ingest).

A size is *required* when a stage fails if it does not fit (rec.stage1 + rec.stage2 train rows,
experts.n) and a *cap* when asking for more just means all there is (keywords.max_items,
traces.count, rdrec.train.rank_positives...). The relative sizes (rec.stage1/stage2.train_rows,
rdrec.train.rank_positives) accept a row count (an int >= 1), a fraction of what the dataset has
(a float in (0, 1]) or "all"; `resolve` is the one place one becomes an integer, and the stages
that train on them call `train_shares` and `rank_positives`, which call it. rec.stage2.train_rows
also accepts "same": stage 1's rows (the reference trains both stages on the same rows).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

from pipeline.errors import BadInput, BadParams

ALL = "all"
SAME = "same"  # rec.stage2.train_rows: exactly stage 1's rows
STAGE1 = "rec.stage1.train_rows"
STAGE2 = "rec.stage2.train_rows"
RANK_POSITIVES = "rdrec.train.rank_positives"
# Every key the sizes stage reads (dvc.yaml declares exactly these), in the pipeline's order.
PARAMS = ("ingest.subsets.test_tiny_rows", "ingest.topn_users", "keywords.max_items", "traces.count",
          "traces.gold.count", "rationales.count", STAGE1, STAGE2, RANK_POSITIVES, "experts.n", "experts.slots",
          "experts.train.train_rows")


def relative_size(value: object) -> int | float | str:
    """A relative size as params.yaml writes it, unchanged: a count, a fraction or "all"."""
    if value == ALL or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    if isinstance(value, float) and 0 < value <= 1:
        return value
    raise ValueError("a row count >= 1, a fraction of the dataset's rows in (0, 1], or 'all'")


# The params models' type of a relative size (rec.stage1.train_rows, rdrec.train.rank_positives).
Size = Annotated[int | float | str, PlainValidator(relative_size)]


def stage_rows(value: object) -> int | float | str:
    """A stage's train rows as params.yaml writes them: a relative size, or "same" (stage 2 only)."""
    return value if value == SAME else relative_size(value)


# rec.stage1 / rec.stage2 train_rows (RecParams rejects "same" for stage 1).
StageRows = Annotated[int | float | str, PlainValidator(stage_rows)]


def resolve(key: str, size: object, available: int) -> int:
    """`size` (params key `key`) as a row count of the `available` ones: a count stays, a fraction
    takes the floor of its share (exactly as written: 0.29 of 100 is 29), "all" takes all."""
    try:
        size = relative_size(size)
    except ValueError as err:
        raise BadParams(f"{key}: {err} (got {size!r})") from None
    if size == ALL:
        return available
    if isinstance(size, float):
        return math.floor(Fraction(str(size)) * available)
    return size


def train_shares(stage1: object, stage2: object, train_rows: int) -> tuple[int, int]:
    """Rows of stage 1 and stage 2, disjoint shares of the `train_rows` train rows
    (pipeline/rec/packing.py, disjoint_shares): fractions are of the whole split; "all" is the
    whole split for stage 1 and, for stage 2, the rows stage 1 leaves. Stage 2's "same" takes no
    share of its own: it trains on stage 1's rows (so the two need not fit together)."""
    if stage1 == SAME:
        raise BadParams(f"{STAGE1}: 'same' is for {STAGE2} only (stage 1's rows)")
    first = resolve(STAGE1, stage1, train_rows)
    if stage2 == SAME:
        second = first
    else:
        second = train_rows - first if stage2 == ALL else resolve(STAGE2, stage2, train_rows)
    if stage2 != SAME and first + second > train_rows:
        raise BadParams(f"{STAGE1} + {STAGE2} ask for {first + second} distinct train rows ({first} + {second}); "
                        f"this dataset's train split has {train_rows} (set fractions of the split such as 0.4, "
                        f"or all for {STAGE2}: the rows stage 1 leaves)")
    for key, rows, asked in ((STAGE1, first, stage1), (STAGE2, second, stage2)):
        if rows < 1:
            raise BadParams(f"{key}: {asked!r} gives no train row of this dataset's {train_rows} "
                            f"({STAGE1} takes {first}); each stage needs at least one")
    return first, second


def rank_positives(asked: object, liked_train_rows: int) -> int:
    """How many liked train rows RDRec's student ranks (more than there are: all of them)."""
    rows = min(resolve(RANK_POSITIVES, asked, liked_train_rows), liked_train_rows)
    if rows < 1:
        raise BadParams(f"{RANK_POSITIVES}: {asked!r} gives no row of this dataset's {liked_train_rows} "
                        "liked train rows; ask for at least one")
    return rows


def cluster_count(n: int | None, slots: list, train_users: int) -> int:
    """The most clusters the clusters stage fits (experts.n; null: the largest count it searches,
    2..len(experts.slots)): fewer than the users with train rows, or the clustering fails."""
    if not isinstance(slots, list) or not (n is None or (isinstance(n, int) and not isinstance(n, bool))):
        raise BadParams(f"experts.n, experts.slots: a count or null, and a list (got {n!r}, {slots!r})")
    most = n if n is not None else min(len(slots), train_users - 1)
    if most < 2 or most >= train_users:
        asked = f"{n} clusters" if n is not None else "at least 2 clusters (experts.n null)"
        raise BadParams(f"experts.n: {asked} need more users with train rows than clusters; this dataset has "
                        f"{train_users} (set a smaller experts.n)")
    return most


def cap(asked: int | None, available: int) -> int:
    """A cap: at most `asked` (None: no cap) of the `available` ones."""
    return available if asked is None else min(int(asked), available)


@dataclass(frozen=True)
class DatasetCounts:
    """What the dataset has, as the sizes are measured against it."""

    train_rows: int
    liked_train_rows: int
    train_users: int
    items: int
    test_small_rows: int
    test_tiny_rows: int
    test_users_with_liked: int  # test users with a liked test row: the top-N users there can be


class _Group(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rows: int
    users: int
    items: int


class _Card(BaseModel):
    """The part of data/ingest/card.json (pipeline/ingest/build.py) the sizes are measured on."""

    model_config = ConfigDict(extra="ignore")
    totals: _Group
    splits: dict[str, _Group]
    subsets: dict[str, _Group]


def dataset_counts(card: dict, user: np.ndarray, label: np.ndarray, split: np.ndarray,
                   where: str = "card.json") -> DatasetCounts:
    """Counts from the ingest card and the interactions' user, label and split columns (the card
    has no count of liked rows)."""
    try:
        parsed = _Card.model_validate(card)
        train, test_small, test_tiny = parsed.splits["train"], parsed.subsets["test_small"], parsed.subsets["test_tiny"]
    except (ValidationError, KeyError) as err:
        raise BadInput(f"{where}: not an ingest card ({str(err).splitlines()[0]})") from None
    liked = label == 1
    return DatasetCounts(
        train_rows=train.rows, liked_train_rows=int((liked & (split == "train")).sum()), train_users=train.users,
        items=parsed.totals.items, test_small_rows=test_small.rows, test_tiny_rows=test_tiny.rows,
        test_users_with_liked=len(np.unique(user[liked & (split == "test")])))


@dataclass(frozen=True)
class Resolved:
    """One size: the key it comes from, what it asked, what the dataset has, what the stage uses."""

    key: str
    asked: Any
    of: str  # what `available` counts
    available: int
    resolved: int
    kind: str  # required (the stage fails when it does not fit) | cap (more = all there is)


def read_sizes(params: dict) -> dict[str, Any]:
    """key -> value of every key in PARAMS, from the params tree (params.yaml as loaded)."""
    values = {}
    for key in PARAMS:
        node = params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise BadParams(f"params.yaml: no key '{key}'")
            node = node[part]
        values[key] = node
    return values


def check_sizes(values: dict[str, Any], counts: DatasetCounts) -> list[Resolved]:
    """Every size of `values` (read_sizes) resolved against `counts`; every one that does not fit
    is named in one BadParams (on one line)."""
    resolved, problems = [], []
    for measure in (_ingest_caps, _teacher_caps, _rec_rows, _rdrec_rows, _expert_sizes):
        try:
            resolved += measure(values, counts)
        except BadParams as err:
            problems.append(str(err))
    if problems:
        raise BadParams("; ".join(problems))
    return resolved


def by_section(sizes: list[Resolved]) -> dict[str, dict[str, dict]]:
    """section -> {key: the size's fields}: one file per section, so a stage depends only on its own."""
    sections: dict[str, dict[str, dict]] = {}
    for size in sizes:
        fields = {k: v for k, v in asdict(size).items() if k != "key"}
        sections.setdefault(size.key.split(".")[0], {})[size.key] = fields
    return sections


def _capped(key: str, values: dict, of: str, available: int) -> Resolved:
    asked = values[key]
    if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool) or asked < 0):
        raise BadParams(f"{key}: a count >= 0 (got {asked!r})")
    return Resolved(key, asked, of, available, cap(asked, available), "cap")


def _ingest_caps(values: dict, counts: DatasetCounts) -> list[Resolved]:
    # applied by ingest already (the card holds the result); listed so every size is in one place
    return [_capped("ingest.subsets.test_tiny_rows", values, "test_small rows", counts.test_small_rows),
            _capped("ingest.topn_users", values, "test users with a liked test row", counts.test_users_with_liked)]


def _teacher_caps(values: dict, counts: DatasetCounts) -> list[Resolved]:
    # upper bounds: the stages draw from rows with enough history (traces: the CF model's mistakes)
    return [_capped("keywords.max_items", values, "items", counts.items),
            _capped("traces.count", values, "train rows", counts.train_rows),
            _capped("traces.gold.count", values, "test_tiny rows", counts.test_tiny_rows),
            _capped("rationales.count", values, "train rows", counts.train_rows)]


def _rec_rows(values: dict, counts: DatasetCounts) -> list[Resolved]:
    shares = train_shares(values[STAGE1], values[STAGE2], counts.train_rows)
    return [Resolved(key, values[key], "train rows", counts.train_rows, rows, "required")
            for key, rows in zip((STAGE1, STAGE2), shares)]


def _rdrec_rows(values: dict, counts: DatasetCounts) -> list[Resolved]:
    rows = rank_positives(values[RANK_POSITIVES], counts.liked_train_rows)
    return [Resolved(RANK_POSITIVES, values[RANK_POSITIVES], "liked train rows", counts.liked_train_rows, rows, "cap")]


def _expert_sizes(values: dict, counts: DatasetCounts) -> list[Resolved]:
    n = cluster_count(values["experts.n"], values["experts.slots"], counts.train_users)
    # each cluster trains on at most its own rows (stages/expert.py), fewer than the split's
    rows = _capped("experts.train.train_rows", values, "train rows of all clusters together", counts.train_rows)
    return [Resolved("experts.n", values["experts.n"], "users with train rows", counts.train_users, n, "required"),
            rows]
