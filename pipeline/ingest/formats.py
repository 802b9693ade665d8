"""Which reader reads which on-disk format, and where each format's files are by default."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pipeline.ingest import movielens, reviews
from pipeline.ingest.embedded import DEFAULT_PIN, check_pinned_file, is_pin, pinned_directory, read_pin
from pipeline.ingest.lines import LineIssues
from pipeline.ingest.records import ItemMeta, RawInteraction, TextLimit

InteractionReader = Callable[[Path, LineIssues, bool], Iterator[RawInteraction]]
ItemReader = Callable[[Path, LineIssues, TextLimit], Iterator[ItemMeta]]


@dataclass(frozen=True)
class Format:
    read_interactions: InteractionReader
    read_items: ItemReader
    interactions_file: str  # default file name; "{name}" is replaced by ingest.source.name
    items_file: str
    has_reviews: bool
    rating_field: str = "rating"  # the dataset's own field names, for messages
    time_field: str = "timestamp"
    dated: bool = False  # time is a date, which the reader turns into epoch seconds
    rating_scale: tuple[float, float] = (1.0, 5.0)  # ingest.rating_scale: null means this


FORMATS: dict[str, Format] = {
    "recbole": Format(movielens.read_recbole_interactions, movielens.read_recbole_items,
                      "{name}.inter", "{name}.item", False),
    "ml100k": Format(movielens.read_ml100k_interactions, movielens.read_ml100k_items,
                     "u.data", "u.item", False),
    "ml1m": Format(movielens.read_ml1m_interactions, movielens.read_ml1m_items,
                   "ratings.dat", "movies.dat", False),
    "amazon": Format(reviews.read_amazon_interactions, reviews.read_amazon_items,
                     "{name}.json.gz", "meta_{name}.json.gz", True,
                     rating_field=reviews.AMAZON_REVIEW_FIELDS[2], time_field=reviews.AMAZON_REVIEW_FIELDS[3]),
    "yelp": Format(reviews.read_yelp_interactions, reviews.read_yelp_items,
                   "yelp_academic_dataset_review.json", "yelp_academic_dataset_business.json", True,
                   rating_field=reviews.YELP_REVIEW_FIELDS[2], time_field=reviews.YELP_REVIEW_FIELDS[3], dated=True),
}


@dataclass(frozen=True)
class RawFiles:
    interactions: Path  # where to read (error messages name these)
    items: Path
    shown: tuple[str, str]  # how card.json names them: as given in params, or package==version:path


def resolve_files(
    fmt: str, path: str | None, name: str, interactions_file: str | None, items_file: str | None
) -> RawFiles:
    """The raw files the params name, filling in format defaults; a pin (see
    pipeline.ingest.embedded; path None = the ML-100k pin) resolves to its checked package files."""
    if fmt not in FORMATS:
        raise ValueError(f"ingest.source.format: unknown format {fmt!r}; one of {sorted(FORMATS)}")
    spec = FORMATS[fmt]
    inter = interactions_file or spec.interactions_file.format(name=name)
    items = items_file or spec.items_file.format(name=name)
    root = Path(path) if path is not None else DEFAULT_PIN
    if not is_pin(root):
        return RawFiles(root / inter, root / items, (str(root / inter), str(root / items)))
    pin = read_pin(root)
    directory = pinned_directory(pin)
    for file in (directory / inter, directory / items):
        check_pinned_file(pin, file)
    return RawFiles(directory / inter, directory / items, (pin.label(inter), pin.label(items)))
