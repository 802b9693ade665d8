"""Interaction rows as tensors, batching, and the per-user histories used for export.

A batch is a dict: user, item (B,) int64; label (B,) float32; history, history_labels (B, T)
int64, left-padded, oldest first, with item ids and labels shifted by +1 so that 0 is padding.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import torch

Batch = dict[str, torch.Tensor]


def pad_histories(items: list, labels: list, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-pad the last `length` entries of each (items, labels) sequence: two (N, length) arrays."""
    padded_items = np.zeros((len(items), length), dtype=np.int64)
    padded_labels = np.zeros((len(items), length), dtype=np.int64)
    for index, (row_items, row_labels) in enumerate(zip(items, labels)):
        row_items = np.asarray(row_items, dtype=np.int64)[-length:]
        row_labels = np.asarray(row_labels, dtype=np.int64)[-length:]
        if row_items.size:
            padded_items[index, -row_items.size :] = row_items + 1
            padded_labels[index, -row_labels.size :] = row_labels + 1
    return padded_items, padded_labels


def rows_to_tensors(frame: pd.DataFrame, history_length: int) -> Batch:
    """All rows of an interactions frame (INTERACTIONS columns) as one big batch."""
    history, history_labels = pad_histories(
        list(frame["history_items"]), list(frame["history_labels"]), history_length
    )
    return {
        "user": torch.tensor(frame["user"].to_numpy(np.int64)),
        "item": torch.tensor(frame["item"].to_numpy(np.int64)),
        "label": torch.tensor(frame["label"].to_numpy(np.float32)),
        "history": torch.from_numpy(history),
        "history_labels": torch.from_numpy(history_labels),
    }


def batch_size_of(batch: Batch) -> int:
    return int(batch["user"].shape[0])


def slice_batch(batch: Batch, index: np.ndarray | slice) -> Batch:
    return {key: value[index] for key, value in batch.items()}


def iterate_batches(batch: Batch, size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]:
    """Consecutive sub-batches of `size`, in a shuffled order when `rng` is given."""
    n_rows = batch_size_of(batch)
    order = rng.permutation(n_rows) if rng is not None else np.arange(n_rows)
    for start in range(0, n_rows, size):
        yield slice_batch(batch, torch.from_numpy(order[start : start + size]))


def latest_train_histories(interactions: pd.DataFrame, n_users: int, history_length: int) -> Batch:
    """One row per user 0..n_users-1: the user's history up to and including the last train row.

    Users without train rows get an empty history. `item` is a dummy 0 (export needs no target).
    """
    train = interactions[interactions["split"] == "train"].sort_values("row")
    last = train.groupby("user", sort=True).tail(1).set_index("user")
    items: list = [[] for _ in range(n_users)]
    labels: list = [[] for _ in range(n_users)]
    for user, row in last.iterrows():
        items[user] = list(row["history_items"]) + [row["item"]]
        labels[user] = list(row["history_labels"]) + [row["label"]]
    history, history_labels = pad_histories(items, labels, history_length)
    return {
        "user": torch.arange(n_users, dtype=torch.int64),
        "item": torch.zeros(n_users, dtype=torch.int64),
        "label": torch.zeros(n_users, dtype=torch.float32),
        "history": torch.from_numpy(history),
        "history_labels": torch.from_numpy(history_labels),
    }


def topn_histories(candidates: pd.DataFrame, interactions: pd.DataFrame, user_histories: Batch) -> Batch:
    """Per-user histories for scoring top-N candidates: the history before the user's positive.

    The positive's own interaction row gives it (a sequential model predicts the held-out item
    from everything before it); users without such a row keep `user_histories` (latest train).
    """
    history = user_histories["history"].clone()
    history_labels = user_histories["history_labels"].clone()
    positives = candidates.loc[candidates["positive"] == 1, ["user", "item"]]
    held_out = positives.merge(interactions, on=["user", "item"]).sort_values("row").groupby("user").tail(1)
    if len(held_out):
        own_items, own_labels = pad_histories(
            list(held_out["history_items"]), list(held_out["history_labels"]), history.shape[1]
        )
        users = torch.from_numpy(held_out["user"].to_numpy(np.int64))
        history[users] = torch.from_numpy(own_items)
        history_labels[users] = torch.from_numpy(own_labels)
    return {**user_histories, "history": history, "history_labels": history_labels}

def user_windows(interactions: pd.DataFrame, length: int, splits: tuple[str, ...]) -> Batch:
    """Windows over each user's whole sequence (all splits, time order) for SASRec.

    A window starting at k has inputs S[k..k+length-2] and targets S[k..k+length-1]: position j
    scores S[k+j] from S[k..k+j-1]. Windows start every `length // 2` items; a row is the target
    of the first window that gives it at least that much context (of window 0 for the user's first
    rows), so each row of `splits` is a target exactly once. `target_rows` holds its interaction
    row id (-1 elsewhere). Shapes: window_* (N, length-1), target_* (N, length).
    """
    stride = max(length // 2, 1)
    frame = interactions.sort_values("row")
    windows = []
    for _, rows in frame.groupby("user", sort=True):
        items = rows["item"].to_numpy(np.int64) + 1
        labels = rows["label"].to_numpy(np.int64)
        targets = np.where(rows["split"].isin(splits).to_numpy(), rows["row"].to_numpy(np.int64), -1)
        for start in range(0, len(items), stride):
            first = start + (0 if start == 0 else length - stride)  # first row this window owns
            end = min(start + length, len(items))
            if first >= end:
                break
            if (targets[first:end] < 0).all():
                continue
            window = np.zeros((4, length), dtype=np.int64)  # items, labels + 1, labels, rows
            window[3] = -1
            count = end - start
            window[0, :count], window[1, :count] = items[start:end], labels[start:end] + 1
            window[2, :count] = labels[start:end]
            window[3, first - start : count] = targets[first:end]
            windows.append(window)
    stacked = np.stack(windows) if windows else np.zeros((0, 4, length), dtype=np.int64)
    return {
        "user": torch.arange(len(stacked)),  # one example per window (sets the batch size)
        "window_items": torch.from_numpy(stacked[:, 0, : length - 1]),
        "window_labels": torch.from_numpy(stacked[:, 1, : length - 1]),
        "target_items": torch.from_numpy(stacked[:, 0]),
        "target_labels": torch.from_numpy(stacked[:, 2]).float(),
        "target_rows": torch.from_numpy(stacked[:, 3]),
    }
