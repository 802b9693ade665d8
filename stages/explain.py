"""Stage explain: trained LLM recommenders write their reasoning for the gold-trace rows,
scored against the teacher's gold traces with BLEU-4, ROUGE-L, METEOR and BERTScore (MiniLM).

Reads data/traces/gold_traces.parquet, data/ingest/{interactions,items}.parquet, the keyword
and CF-vector artifacts the variants' prompts use, and data/rec/<model>/ (adapter + projector).
Writes data/explanations/explanations.parquet (one row per (model, row)) and
metrics/explanations.json ({model: {bleu4, bleu4_sentence_mean, rouge_l, meteor, bertscore_f1,
n_rows, mean_new_words, says_nothing}}, plus generation seconds; says_nothing counts the reasons
that say nothing by explain.says_nothing).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from pipeline import layout, schemas
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json, write_table
from pipeline.explain.bertscore import BertScorer
from pipeline.explain.params import ExplainParams
from pipeline.explain.prompts import gold_rows
from pipeline.explain.reasoning import score_explanations
from pipeline.explain.says_nothing import count_saying_nothing
from pipeline.params import load_section
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import load_recommender
from pipeline.errors import run_stage
from stages.stamp import stamped

GOLD_TRACES = layout.GOLD_TRACES
OUTPUT = layout.EXPLANATIONS_DIR / "explanations.parquet"
METRICS = layout.metrics("explanations")


def explain_model(name: str, params: ExplainParams, rec_params: RecParams,
                  frame: pd.DataFrame) -> tuple[list[str], str]:
    """(greedy reasoning of model `name` for `frame`'s rows in order, the precision it ran in)."""
    recommender = load_recommender(name, rec_params, params.dtype)
    examples = recommender.encode(frame)
    texts = recommender.reasons(examples, params.batch_size, params.max_new_tokens, params.min_new_tokens,
                                params.dtype, params.controls(), desc=f"explain {name}")
    return texts, recommender.precision


def main() -> None:
    params = load_section("explain", ExplainParams)
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(params.threads)
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    frame = gold_rows(GOLD_TRACES, interactions, params.rows)
    if frame.empty:  # a weak teacher may verify no gold row: nothing to compare with, counted
        with atomic_paths(OUTPUT, METRICS) as (table_tmp, metrics_tmp):  # both or neither
            write_table(schemas.EXPLANATIONS.empty_table(), table_tmp, schemas.EXPLANATIONS)
            write_json(stamped({name: {"n_rows": 0} for name in params.models}, "explain"), metrics_tmp)
        print(f"explain: {GOLD_TRACES} holds no gold traces (the teacher verified none; metrics/traces.json):"
              f" nothing to explain -> {OUTPUT} (empty), {METRICS}")
        return
    scorer = BertScorer()
    tables, metrics = [], {}
    for name in params.models:
        started = time.perf_counter()
        texts, precision = explain_model(name, params, rec_params, frame)
        seconds = time.perf_counter() - started
        per_row, summary = score_explanations(texts, frame["trace"].tolist(), scorer)
        summary.update(
            precision=precision,
            generation_seconds=seconds, mean_new_words=sum(len(t.split()) for t in texts) / len(texts),
            says_nothing=count_saying_nothing(texts, params.says_nothing),
        )
        metrics[name] = summary
        tables.append(
            pd.concat([pd.DataFrame({"row": frame["row"], "model": name, "explanation": texts,
                                     "gold": frame["trace"]}), per_row], axis=1)
        )
    with atomic_paths(OUTPUT, METRICS) as (table_tmp, metrics_tmp):  # both or neither
        write_frame(pd.concat(tables, ignore_index=True), table_tmp, schemas.EXPLANATIONS)
        write_json(stamped(metrics, "explain"), metrics_tmp)
    shown = "; ".join(
        f"{name} BLEU-4 {m['bleu4']:.4f} ROUGE-L {m['rouge_l']:.4f} METEOR {m['meteor']:.4f} "
        f"BERTScore {m['bertscore_f1']:.4f} ({m['generation_seconds']:.0f} s)"
        for name, m in metrics.items()
    )
    print(f"explain: {len(frame)} gold rows; {shown} -> {OUTPUT}, {METRICS}")


if __name__ == "__main__":
    run_stage(main)
