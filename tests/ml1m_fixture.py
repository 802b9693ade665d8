"""A small dataset in MovieLens 1M's own files (ratings.dat, movies.dat: `::`-separated, latin-1),
its timestamps spread over 2000-06 .. 2003-02 so that month windows like the reference split's
(profiles/ml1m.yaml) each hold rows. Labels follow hidden user and item factors, so CF can learn."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

GENRES = ["Action", "Comedy", "Drama", "Romance", "Thriller", "Animation", "Horror", "Documentary"]
START = datetime(2000, 6, 1, tzinfo=timezone.utc).timestamp()
END = datetime(2003, 2, 28, tzinfo=timezone.utc).timestamp()


def write_ml1m(directory: Path, users: int = 60, items: int = 80, per_user: int = 40, seed: int = 0) -> Path:
    """Write ratings.dat and movies.dat under `directory` (created); returns it."""
    rng = np.random.default_rng(seed)
    taste, traits = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for user in range(users):
        for item in rng.choice(items, size=per_user, replace=False):
            liked = taste[user] @ traits[item] + 0.3 * rng.normal() > 0
            rating = int(rng.integers(4, 6) if liked else rng.integers(1, 4))
            lines.append((int(rng.integers(START, END)), user + 1, int(item) + 1, rating))
    lines.sort()
    (directory / "ratings.dat").write_text(
        "".join(f"{u}::{i}::{r}::{t}\n" for t, u, i, r in lines), encoding="latin-1")
    titles = [f"Film {k} of the {GENRES[k % len(GENRES)].lower()} kind ({1980 + k % 20})" for k in range(items)]
    (directory / "movies.dat").write_text("".join(
        f"{k + 1}::{title}::{GENRES[k % len(GENRES)]}|{GENRES[(k * 3 + 1) % len(GENRES)]}\n"
        for k, title in enumerate(titles)), encoding="latin-1")
    return directory
