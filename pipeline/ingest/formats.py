"""Which reader reads which on-disk format, and where each format's files are by default."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pipeline.ingest import movielens, reviews
from pipeline.ingest.lines import LineIssues
from pipeline.ingest.records import ItemMeta, RawInteraction

InteractionReader = Callable[[Path, LineIssues, bool], Iterator[RawInteraction]]
ItemReader = Callable[[Path, LineIssues, int], Iterator[ItemMeta]]


@dataclass(frozen=True)
class Format:
    read_interactions: InteractionReader
    read_items: ItemReader
    interactions_file: str  # default file name; "{name}" is replaced by ingest.source.name
    items_file: str
    has_reviews: bool


FORMATS: dict[str, Format] = {
    "recbole": Format(movielens.read_recbole_interactions, movielens.read_recbole_items,
                      "{name}.inter", "{name}.item", False),
    "ml100k": Format(movielens.read_ml100k_interactions, movielens.read_ml100k_items,
                     "u.data", "u.item", False),
    "ml1m": Format(movielens.read_ml1m_interactions, movielens.read_ml1m_items,
                   "ratings.dat", "movies.dat", False),
    "amazon": Format(reviews.read_amazon_interactions, reviews.read_amazon_items,
                     "{name}.json.gz", "meta_{name}.json.gz", True),
    "yelp": Format(reviews.read_yelp_interactions, reviews.read_yelp_items,
                   "yelp_academic_dataset_review.json", "yelp_academic_dataset_business.json", True),
}


def embedded_ml100k_dir() -> Path:
    """The RecBole package's ML-100k copy, found without importing recbole (its import is heavy)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "ingest.source.path is null but the recbole package is not installed; "
            "`pip install --no-deps recbole==1.2.1` or set ingest.source.path"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"


def resolve_files(
    fmt: str, path: str | None, name: str, interactions_file: str | None, items_file: str | None
) -> tuple[Path, Path]:
    """(interactions path, item metadata path) from the params, filling in format defaults."""
    if fmt not in FORMATS:
        raise ValueError(f"ingest.source.format: unknown format {fmt!r}; one of {sorted(FORMATS)}")
    spec = FORMATS[fmt]
    root = Path(path) if path is not None else embedded_ml100k_dir()
    inter = interactions_file or spec.interactions_file.format(name=name)
    items = items_file or spec.items_file.format(name=name)
    return root / inter, root / items
