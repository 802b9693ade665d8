"""Measurement: which answer format the local teacher parses best (rationales.answer_format).

Asks the local backend (params.yaml `llm`, its own cache) for the rationales of the first `--rows`
rows the rationales stage would pick, once per answer format (plain, prefill, json_schema: the
local backend cannot constrain decoding, so json_schema is only asked for in the prompt), and
prints parse success and the form each answer was read in. Writes bench/results/rationale_formats.json.

    python bench/rationale_formats.py [--rows 48] [--cache /tmp/rationale_formats.sqlite]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pipeline.artifacts import read_frame
from pipeline.llm.backends import build_backend
from pipeline.llm.cache import CachedChat
from pipeline.llm.chat import SamplingParams
from pipeline.llm.config import LLMConfig
from pipeline.rationales.distill import distill_rationales, select_rationale_rows
from pipeline.schemas import INTERACTIONS, ITEMS
from pipeline.params import load_section
from stages.rationales import RationaleParams

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "rationale_formats.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--cache", default="/tmp/rationale_formats.sqlite")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_section("rationales", RationaleParams)
    llm = load_section("llm", LLMConfig)
    interactions = read_frame("data/ingest/interactions.parquet", INTERACTIONS)
    items = read_frame("data/ingest/items.parquet", ITEMS)
    rows, kind = select_rationale_rows(interactions[interactions["split"] == "train"], params.count, params.seed)
    rows = rows.iloc[: args.rows]
    client = CachedChat(build_backend(llm), args.cache)
    sampling = SamplingParams(max_tokens=params.max_tokens, repetition_penalty=params.repetition_penalty)
    results = {"model": llm.model, "backend": llm.backend, "input_kind": kind, "rows": len(rows), "formats": {}}
    for fmt in ("plain", "prefill", "json_schema"):
        started = time.perf_counter()
        result = distill_rationales(rows, kind, items, client, sampling, params.budgets, params.review_words, fmt)
        results["formats"][fmt] = {
            "parsed": len(rows) - result.parse_failures, "forms": result.forms,
            "tokens_in": result.tokens_in, "tokens_out": result.tokens_out,
            "seconds": round(time.perf_counter() - started, 1),
            "examples": result.table.loc[result.table["source"] == "llm", ["user_preference", "item_attributes"]]
            .head(3).to_dict("records"),
        }
        print(fmt, json.dumps({k: v for k, v in results["formats"][fmt].items() if k != "examples"}))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
