"""Encoded training/scoring examples built from the ingest, keyword, CF and trace artifacts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.llm.chat import encode_text
from pipeline.rec.params import CF_SLOTS
from pipeline.rec.prompts import (
    ANSWERS,
    PromptItem,
    PromptTemplate,
    cf_slot_refs,
    chat_text,
    encode_prompt,
    render_prompt,
)


@dataclass
class RecExample:
    """One (user, target item) pair, tokenized. `slot_vectors` (n_slots, d) fill `slot_positions`."""

    row: int
    user: int
    item: int
    label: int
    prompt_ids: list[int]
    answer_ids: list[int]  # "Yes"/"No" (+ eos), or the reasoning trace (+ eos)
    slot_positions: list[int] = field(default_factory=list)
    slot_vectors: np.ndarray | None = None
    slot_kinds: list[int] = field(default_factory=list)  # per slot: USER_SLOT or ITEM_SLOT (the projector's scale)
    reasoning: bool = False
    answer_cut: bool = False  # the trace was longer than the answer budget and was cut
    shared_len: int = 0  # prompt_ids[:shared_len]: the system part, the same for every row
    target_start: int = 0  # prompt_ids[:target_start]: everything before the target (user + history)
    state_row: int = -1  # the interaction row whose user state the prompt shows (top-N: the positive's)
    expert_weights: np.ndarray | None = None  # (E,) this row's expert mixture (fused models only)

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.answer_ids)


USER_SLOT, ITEM_SLOT = 0, 1


def slot_kinds(refs: list[tuple[str, int]]) -> list[int]:
    """USER_SLOT / ITEM_SLOT of each ("user"|"item", id) slot reference."""
    return [USER_SLOT if kind == "user" else ITEM_SLOT for kind, _ in refs]


@dataclass(frozen=True)
class CFVectors:
    """Dense CF tables: users (n_users, d), items (n_items, d), indexed by contiguous id; for
    sequential models also `row_users` (n, d): the user's state before each interaction row of
    `rows` (sorted), which the user slot of that row's prompt shows instead of the user vector."""

    users: np.ndarray
    items: np.ndarray
    row_users: np.ndarray | None = None
    rows: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.users.shape[1])

    def user_state(self, user: int, row: int) -> np.ndarray:
        if self.row_users is not None and row >= 0:
            index = int(np.searchsorted(self.rows, row))
            if index < len(self.rows) and self.rows[index] == row:
                return self.row_users[index]
        return self.users[user]

    def calibration_items(self, count: int = 2048) -> np.ndarray:
        """Item vectors a new projector's item scale is calibrated on (evenly spaced ids)."""
        return _spaced(self.items, count)

    def calibration_users(self, count: int = 2048) -> np.ndarray:
        """What the user slot shows, for the projector's user scale: per-row user states when the
        tables have them (sequential models), else the user vectors (evenly spaced)."""
        return _spaced(self.row_users if self.row_users is not None else self.users, count)

    def lookup(self, refs: list[tuple[str, int]], row: int = -1) -> np.ndarray:
        """(len(refs), d) float32 vectors for ("user"|"item", id) references; a user's vector is
        its state before interaction `row` when the tables have one."""
        if not refs:  # a prompt without slots (rec.prompt.cf_slots: history only, no history yet)
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.user_state(i, row) if kind == "user" else self.items[i] for kind, i in refs])


def _spaced(table: np.ndarray, count: int) -> np.ndarray:
    finite = table[np.isfinite(table).all(axis=1)]
    if len(finite) <= count:
        return finite
    return finite[np.linspace(0, len(finite) - 1, count).astype(np.int64)]


def dense_vectors(frame: pd.DataFrame, id_column: str, where: str) -> np.ndarray:
    """(max id + 1, d) float32 table from a USER_VECTORS / ITEM_VECTORS frame; missing ids and
    NaN or infinite values are an error (a NaN would pass for a missing id)."""
    schemas.require_finite(frame, "vector", where, [id_column])
    ids = frame[id_column].to_numpy()
    vectors = np.stack(frame["vector"].to_numpy()).astype(np.float32)
    table = np.full((int(ids.max()) + 1, vectors.shape[1]), np.nan, dtype=np.float32)
    table[ids] = vectors
    missing = np.flatnonzero(np.isnan(table[:, 0]))
    if len(missing):
        raise ValueError(f"{where}: no vector for {id_column} {missing[:5].tolist()} ({len(missing)} missing)")
    return table


def load_cf_vectors(user_vectors, item_vectors, variant: str, row_user_vectors=None) -> CFVectors:
    """The dense CF tables from USER_VECTORS / ITEM_VECTORS (and ROW_USER_VECTORS) parquet paths;
    `variant` names who needs them in the error when a path is missing (None)."""
    if user_vectors is None or item_vectors is None:
        raise ValueError(f"{variant}: CF slots need user and item vector files")
    rows = row_users = None
    if row_user_vectors is not None:
        frame = read_frame(row_user_vectors, schemas.ROW_USER_VECTORS)
        schemas.require_finite(frame, "vector", str(row_user_vectors), ["row"])
        frame = frame.sort_values("row")
        rows = frame["row"].to_numpy()
        row_users = np.stack(frame["vector"].to_numpy()).astype(np.float32)
    return CFVectors(
        dense_vectors(read_frame(user_vectors, schemas.USER_VECTORS), "user", str(user_vectors)),
        dense_vectors(read_frame(item_vectors, schemas.ITEM_VECTORS), "item", str(item_vectors)),
        row_users, rows,
    )


def build_catalog(
    items: pd.DataFrame, keywords: pd.DataFrame | None, title_words: int, keywords_per_item: int
) -> dict[int, PromptItem]:
    """item id -> PromptItem: title cut to `title_words` words, up to `keywords_per_item` keywords
    (from the keyword artifact when given, else none; items it lacks fall back to categories)."""
    kw_map: Mapping[int, list[str]] = {}
    if keywords is not None:
        kw_map = dict(zip(keywords["item"].astype(int), keywords["keywords"]))
    catalog = {}
    for item, title, categories in zip(items["item"].astype(int), items["title"], items["categories"]):
        words = kw_map.get(item)
        if words is None:  # no keyword artifact: none; an item it lacks: its categories
            words = categories if keywords is not None and categories is not None else []
        words = list(words)
        short_title = " ".join(str(title).split()[:title_words])
        catalog[item] = PromptItem(short_title, tuple(str(w) for w in words[:keywords_per_item]))
    return catalog


def build_examples(
    frame: pd.DataFrame,
    catalog: Mapping[int, PromptItem],
    tokenizer,
    template: PromptTemplate,
    history_items: int,
    vectors: CFVectors | None,
    traces: Mapping[int, str] | None = None,
    max_answer_tokens: int = 64,
    desc: str = "encode prompts",
    slots: Collection[str] = CF_SLOTS,
) -> list[RecExample]:
    """Encode each interaction row of `frame` (INTERACTIONS columns). With `vectors` the prompt has
    CF slots of the kinds in `slots` (the user's state before row `state_row`, or `row`, when
    `vectors` has row states); rows in `traces` (row -> "Yes. reasoning...") get the trace as their
    answer."""
    placeholder = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    examples = []
    columns = ["row", "user", "item", "label", "history_items", "history_labels"]
    state_rows = frame["state_row"] if "state_row" in frame else frame["row"]
    for (row, user, item, label, h_items, h_labels), state_row in tqdm(
        zip(frame[columns].itertuples(index=False), state_rows), total=len(frame), desc=desc, leave=False
    ):
        h_items = [int(i) for i in list(h_items)[-history_items:]] if history_items > 0 else []
        h_labels = [int(v) for v in list(h_labels)[-history_items:]] if history_items > 0 else []
        history = [(_catalog_item(catalog, i, row), v) for i, v in zip(h_items, h_labels)]
        target = _catalog_item(catalog, item, row)
        system, user_text = render_prompt(template, history, target, vectors is not None, marked=True, slots=slots)
        prompt = encode_prompt(tokenizer, chat_text(tokenizer, system, user_text), placeholder)
        trace = traces.get(int(row)) if traces else None
        answer = trace if trace else ANSWERS[int(label)]
        answer_ids = encode_text(tokenizer, answer)  # a teacher's trace is data, tokenized as text
        refs = cf_slot_refs(user, h_items, item, slots)
        slot_vectors = vectors.lookup(refs, int(state_row)) if vectors is not None else None
        examples.append(
            RecExample(int(row), int(user), int(item), int(label), prompt.ids, answer_ids[:max_answer_tokens] + eos,
                       prompt.slot_positions, slot_vectors, slot_kinds(refs) if vectors is not None else [],
                       reasoning=bool(trace),
                       answer_cut=len(answer_ids) > max_answer_tokens,
                       shared_len=prompt.breaks[0], target_start=prompt.breaks[1], state_row=int(state_row))
        )
    return examples


def topn_frame(candidates: pd.DataFrame, interactions: pd.DataFrame) -> pd.DataFrame:
    """TOPN_CANDIDATES rows as build_examples input: each candidate item as the target of its
    user's positive row (that row's history), label = positive, row = -1 (a candidate, not an
    interaction; `state_row` = the positive's row, whose user state a sequential CF model gives).
    Candidates keep their order."""
    history = interactions[["row", "user", "history_items", "history_labels"]]
    joined = candidates.merge(history, on="row", how="left", suffixes=("", "_row"), validate="many_to_one")
    bad = joined["user_row"].isna() | (joined["user_row"] != joined["user"])
    if bad.any():
        first = joined.loc[bad].iloc[0]
        raise ValueError(f"topn_candidates: row {int(first['row'])} of user {int(first['user'])} is not that user's interaction")
    return pd.DataFrame({
        "row": -1, "user": joined["user"].astype(int), "item": joined["item"].astype(int),
        "label": joined["positive"].astype(int), "history_items": joined["history_items"],
        "history_labels": joined["history_labels"], "state_row": joined["row"].astype(int),
    })


def _catalog_item(catalog: Mapping[int, PromptItem], item: int, row: int) -> PromptItem:
    if item not in catalog:
        raise KeyError(f"interactions row {row}: item {item} not in items.parquet")
    return catalog[item]
