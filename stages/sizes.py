"""Stage `sizes`: every params size that depends on the dataset (rows, items, users) resolved against
it and checked, right after ingest and before any teacher call is paid for (pipeline/sizes.py).

Reads params.yaml's keys in pipeline/sizes.py PARAMS, data/ingest/card.json and the user, label and
split columns of data/ingest/interactions.parquet; writes data/sizes/<section>.json (per key: what
it asked, of what, what the dataset has, what the stage uses, required or cap), one file per
section so that each stage depends only on its own. A size that does not fit is one line naming
the key, what it asks and what the dataset has, and exit status 2.
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipeline import layout
from pipeline.artifacts import atomic_directory, validate_schema, write_json
from pipeline.errors import BadInput, MissingInput, run_stage
from pipeline.params import PARAMS_FILE
from pipeline.schemas import INTERACTIONS
from pipeline.sizes import DatasetCounts, by_section, check_sizes, dataset_counts, read_sizes

COLUMNS = pa.schema([INTERACTIONS.field(name) for name in ("user", "label", "split")])


def read_counts() -> DatasetCounts:
    """The dataset's counts: the ingest card, and three columns of the interactions (not the
    histories: the whole table of a large dataset is slow to read)."""
    for path in (layout.CARD, layout.INTERACTIONS):
        if not path.exists():
            raise MissingInput(f"{path}: artifact not found (run the ingest stage first)")
    try:
        card = json.loads(layout.CARD.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInput(f"{layout.CARD}: not JSON ({err})") from None
    table = pq.read_table(layout.INTERACTIONS, columns=COLUMNS.names)
    validate_schema(table.schema, COLUMNS, str(layout.INTERACTIONS))
    columns = {name: table.column(name).to_numpy() for name in COLUMNS.names}
    return dataset_counts(card, columns["user"], columns["label"], columns["split"], str(layout.CARD))


def main() -> None:
    if not PARAMS_FILE.exists():
        raise MissingInput(f"{PARAMS_FILE}: not found; run stages from the project root")
    values = read_sizes(yaml.safe_load(PARAMS_FILE.read_text()) or {})
    sizes = check_sizes(values, read_counts())
    with atomic_directory(layout.SIZES_DIR) as tmp:
        for section, entries in by_section(sizes).items():
            write_json(entries, tmp / layout.sizes(section).name)
    # a cap past what the dataset has is fine (all of it), but worth seeing once
    for size in sizes:
        if size.kind == "cap" and isinstance(size.asked, int) and size.resolved < size.asked:
            print(f"sizes: {size.key} = {size.asked}: this dataset has {size.available} {size.of}, "
                  "all of them are used")
    print(f"sizes: {len(sizes)} sizes fit this dataset -> {layout.SIZES_DIR}")


if __name__ == "__main__":
    run_stage(main)
