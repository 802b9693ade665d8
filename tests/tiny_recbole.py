"""A tiny random MovieLens-like dataset in RecBole atomic files, written by tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

JAN_2021 = 1609459200  # 2021-01-01 UTC


def write_tiny_recbole(root: Path, users: int, rows_per_user: int, items: int, days: int, seed: int) -> int:
    """Write `root/tiny.inter` and `root/tiny.item`: each user rates `rows_per_user` distinct items
    at random times over `days` days from 2021-01-01. Returns the interaction count."""
    rng = np.random.default_rng(seed)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(users):
        for item in rng.choice(items, rows_per_user, replace=False):
            timestamp = JAN_2021 + rng.integers(0, days * 86400)
            inter.append(f"{user + 1}\t{item + 1}\t{rng.integers(1, 6)}\t{timestamp}")
    (root / "tiny.inter").write_text("\n".join(inter) + "\n")
    lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    lines += [f"{item + 1}\tMovie {item + 1}\t1999\tComedy Drama" for item in range(items)]
    (root / "tiny.item").write_text("\n".join(lines) + "\n")
    return len(inter) - 1
