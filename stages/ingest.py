"""DVC stage `ingest`: raw files -> data/ingest/{interactions,items,users,subsets,topn_candidates}.parquet
and data/ingest/card.json (with the outputs' fingerprint, pipeline/provenance.py: every metrics file
records the one it was computed from). Params: params.yaml `ingest:`.

The directory is written whole into a temporary sibling and swapped in at the end, so a crash or
kill at any moment leaves the previous data/ingest (or none), never a mix of old and new files; the
next run removes what a killed run left behind."""
from __future__ import annotations

import logging
import time

from pipeline import layout
from pipeline.artifacts import atomic_directory, write_json, write_table
from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.schemas import INTERACTIONS, ITEMS, SUBSET_ROWS, TOPN_CANDIDATES, USERS
from pipeline.errors import run_stage
from pipeline.params import load_section
from pipeline.provenance import ingest_fingerprint

OUT = layout.INGEST
log = logging.getLogger("stages.ingest")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_section("ingest", IngestParams)
    began = time.perf_counter()
    with atomic_directory(OUT) as tmp:
        out = run_ingest(params)
        write_table(out.interactions, tmp / "interactions.parquet", INTERACTIONS)
        write_table(out.items, tmp / "items.parquet", ITEMS)
        write_table(out.users, tmp / "users.parquet", USERS)
        write_table(out.subsets, tmp / "subsets.parquet", SUBSET_ROWS)
        write_table(out.topn_candidates, tmp / "topn_candidates.parquet", TOPN_CANDIDATES)
        # what every metrics file records as its `ingest` (pipeline/provenance.py)
        out.card["fingerprint"] = ingest_fingerprint(tmp)
        write_json(out.card, tmp / "card.json")
    splits = out.card["splits"]
    subsets = out.card["subsets"]
    read = out.card["read"]
    log.info(
        "ingest: wrote %s: %d rows (train/valid/test %s), %d users, %d items, subsets %s, "
        "%d top-N users, %d bad lines skipped, %d repeated (user, item) rows (%s), fingerprint %s, %.1fs",
        OUT, out.interactions.num_rows, "/".join(str(splits[s]["rows"]) for s in splits),
        out.users.num_rows, out.items.num_rows, "/".join(str(subsets[s]["rows"]) for s in subsets),
        out.card["topn"]["users"], sum(read["bad_lines_skipped"].values()),
        read["duplicates"]["repeated_rows"], read["duplicates"]["policy"], out.card["fingerprint"],
        time.perf_counter() - began,
    )


if __name__ == "__main__":
    run_stage(main)
