"""`thinkrec recommend --user <raw id>`: top-K items for one user, CF candidates re-ranked by a
trained LLM recommender, with the model's reasoning for the first few.

Reads params.yaml (recommend, rec, cf.model, explain) and data/ingest, data/cf_selected (the CF model
the cf_select stage chose, which it names; a cf.model naming another is a stale selection),
data/rec/<model>, data/keywords (variants with keywords) and the backbone. Refuses, in one line, a
model whose metrics/<variant>_train.json or CF log (data/cf_selected/train_log.json; for
thinkrec_experts also metrics/gate.json) comes from another ingest than data/ingest now or has no
fingerprint (pipeline/provenance.py); notes on stderr one whose params changed since."""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from pipeline import layout, schemas
from pipeline.artifacts import read_frame, read_json_object
from pipeline.cf.config import CFParams
from pipeline.cf.selected import SELECTED, selected_cf_model
from pipeline.cli.stage_of import producing_stage, require
from pipeline.experts.assembly import NAME
from pipeline.experts.params import ExpertsParams
from pipeline.explain.params import ExplainParams
from pipeline.errors import BadInput
from pipeline.params import PARAMS_FILE, load_section
from pipeline.provenance import ingest_fingerprint, origin
from pipeline.rec.examples import dense_vectors
from pipeline.rec.inputs import rec_inputs
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import base_variant, load_recommender
from pipeline.recommend.candidates import count_unseen, user_id
from pipeline.recommend.cf_state import load_history_encoder
from pipeline.recommend.grounding import Evidence, ground
from pipeline.ranking.params import RankingParams
from pipeline.recommend.params import RecommendParams
from pipeline.recommend.ranking import GenerationSettings, Recommendation, recommend_items


def add_arguments(parser) -> None:
    parser.add_argument("--user", required=True, help="the dataset's own user id (e.g. 196 for ML-100k)")
    parser.add_argument("-k", type=bounded("k"), default=None,
                        help="recommendations shown, at most the candidates (default: params recommend.k)")
    parser.add_argument("--explain", type=bounded("explain"), default=None,
                        help="top recommendations explained (default: params recommend.explain)")
    parser.add_argument("--model", default=None, help="trained LLM recommender: a variant of data/rec/, or "
                        f"{NAME} (ThinkRec with its experts and gate) (default: params recommend.model)")
    parser.add_argument("--candidates", type=bounded("candidates"), default=None,
                        help="CF candidates re-ranked, at most the items the user has not rated "
                             "(default: params recommend.candidates; null: ranking.retrieve_k, as evaluated)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    params = load_section("recommend", RecommendParams)
    overrides = {"model": args.model, "k": args.k, "explain": args.explain, "candidates": args.candidates}
    params = RecommendParams.model_validate({**params.model_dump(),
                                             **{k: v for k, v in overrides.items() if v is not None}})
    if params.candidates is None:  # the list the evaluation measures (pipeline/ranking)
        params = params.model_copy(update={"candidates": load_section("ranking", RankingParams).retrieve_k})
    rec_params = load_section("rec", RecParams)
    explain = load_section("explain", ExplainParams)
    torch.set_num_threads(params.threads)
    started = time.perf_counter()

    spec = base_variant(params.model)  # for thinkrec_experts: ThinkRec, whose experts are fused in, weighed by the gate
    with_experts = spec.name != params.model
    requested = load_section("cf", CFParams).model
    inputs = replace(rec_inputs(spec), topn_candidates=None, row_user_vectors=None)
    cf_dir = layout.CF_SELECTED_DIR
    model_dir = layout.rec_dir(spec.name)
    backbone = [Path(rec_params.backbone)] if Path(rec_params.backbone).parts[0] == "data" else []
    experts = [layout.CLUSTERS_DIR / "clustering.json", layout.GATE_DIR / "gate.json"] if with_experts else []
    require([layout.USERS, inputs.interactions, inputs.items, inputs.subsets, cf_dir / SELECTED,
             cf_dir / "user_vectors.parquet", cf_dir / "item_vectors.parquet",
             *(p for p in (inputs.keywords,) if p is not None), model_dir / "model.json", *backbone, *experts])

    cf_model = selected_cf_model(cf_dir, requested)
    require_current([layout.train_metrics(spec.name), cf_dir / "train_log.json",
                     *([layout.metrics("gate")] if with_experts else [])])
    users = read_frame(layout.USERS, schemas.USERS)
    user = user_id(users, args.user)
    train = rec_params.training(spec.name, spec.stage)
    upper = load_section("experts", ExpertsParams).train.upper_layers if with_experts else None
    recommender = load_recommender(params.model, rec_params, train.dtype, upper_layers=upper, inputs=inputs)
    cf_users = dense_vectors(read_frame(cf_dir / "user_vectors.parquet", schemas.USER_VECTORS), "user",
                             str(cf_dir / "user_vectors.parquet"))
    cf_items = dense_vectors(read_frame(cf_dir / "item_vectors.parquet", schemas.ITEM_VECTORS), "item",
                             str(cf_dir / "item_vectors.parquet"))
    unseen = count_unseen(recommender.data.interactions, user, args.user, len(cf_items))
    params = fit_to_catalogue(params, args, unseen, len(cf_items))
    result = recommend_items(
        recommender, recommender.data.interactions, user, args.user, cf_users, cf_items,
        params.candidates, params.k, params.explain, rec_params.scoring.topn_batch_size, train.dtype,
        GenerationSettings(explain.batch_size, explain.max_new_tokens, explain.min_new_tokens, explain.controls(),
                           explain.says_nothing),
        load_history_encoder(cf_dir / "model.pt"),
    )
    seconds = time.perf_counter() - started
    items = recommender.data.items.set_index("item")
    grounds = ground(result, items, cf_items, rec_params.prompt.title_words)
    if args.json:
        # allow_nan=False: bare NaN is not JSON (recommend_items already refuses non-finite scores)
        print(json.dumps(as_json(result, args.user, params, cf_model, items, grounds), indent=2,
                         allow_nan=False))
    else:
        print(as_text(result, args.user, params, f"{cf_model} (cf.model: {requested})", items, seconds, grounds))
    return 0


def require_current(paths: list[Path]) -> None:
    """The trained model comes from data/ingest now: each of `paths` (its training metrics, the CF
    model's log) carries the fingerprint of data/ingest (pipeline/provenance.py), else BadInput naming
    the file and the stage that rebuilds it. A file whose params changed since is said on stderr."""
    ingest = ingest_fingerprint(layout.INGEST)
    params = (yaml.safe_load(PARAMS_FILE.read_text()) or {}) if PARAMS_FILE.exists() else {}
    for path in paths:
        stage = producing_stage(path) or "<the stage that writes it>"
        data = read_json_object(path) if Path(path).exists() else {}
        found = origin(data, ingest, params)
        if not found.current:
            why = found.why if Path(path).exists() else "absent (the model's origin is unknown)"
            raise BadInput(f"{path} {why}: the trained model is not this dataset's; run `dvc repro {stage}`")
        if found.note:
            note(f"{path}: {found.note} (`dvc repro {stage}` retrains with params.yaml now)")


def evidence_json(found: Evidence, items) -> dict:
    return {"similar_liked": [{"item": items.at[i, "raw_id"], "title": title, "cosine": round(cosine, 4)}
                              for i, title, cosine in found.similar_liked],
            "shared_genres": found.shared_genres}


def evidence_text(found: Evidence) -> str:
    if not found.similar_liked:
        return "(no liked item in the history shown)"
    similar = ", ".join(f"{title} (CF cosine {cosine:.2f})" for _, title, cosine in found.similar_liked)
    genres = f"; shares {', '.join(found.shared_genres)} with the liked history" if found.shared_genres else ""
    return f"close to liked {similar}{genres}"


def bounded(field: str):
    """argparse type of the option overriding params `recommend.<field>`: an integer within the
    lower bound RecommendParams declares (its one source), else a one-line argument error."""
    minimum = next(rule.ge for rule in RecommendParams.model_fields[field].metadata if hasattr(rule, "ge"))

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def fit_to_catalogue(params: RecommendParams, args, unseen: int, catalogue: int) -> RecommendParams:
    """`params` with the candidates cut to the `unseen` items the user has not rated (of `catalogue`)
    and k to the candidates, each cut said on stderr before the scoring: --candidates 100000 used
    to re-rank the whole catalogue and then claim 100,000 items."""
    candidates = min(params.candidates, unseen)
    k = min(params.k, candidates)
    if candidates < params.candidates:
        note(f"{_named(args.candidates, '--candidates')} {params.candidates:,} is more than the {unseen:,} items "
             f"user {args.user} has not rated (of {catalogue:,}): re-ranking those {unseen:,}")
    if k < params.k:
        note(f"{_named(args.k, '-k')} {params.k:,} is more than the {candidates:,} candidates re-ranked: "
             f"showing {k:,}")
    return params.model_copy(update={"candidates": candidates, "k": k})


def _named(given, option: str) -> str:
    """The option as the user set it: on the command line, or params.yaml's recommend section."""
    return option if given is not None else f"recommend.{option.lstrip('-')}"


def note(text: str) -> None:
    print(f"thinkrec recommend: note: {text}", file=sys.stderr)


def as_json(result: Recommendation, raw_user: str, params: RecommendParams, cf_model: str, items,
            grounds: list[tuple[str, Evidence]]) -> dict:
    history_items, history_labels = result.history
    return {
        "user": raw_user, "model": params.model, "cf_model": cf_model, "candidates": params.candidates,
        "history": [{"item": items.at[i, "raw_id"], "title": items.at[i, "title"], "liked": bool(v)}
                    for i, v in zip(history_items, history_labels)],
        "recommendations": [
            {"rank": rank, "item": items.at[int(r.item), "raw_id"], "title": items.at[int(r.item), "title"],
             "score": round(float(r.score), 4), "cf_score": round(float(r.cf_score), 4), "cf_rank": int(r.cf_rank),
             **({"reasoning": None if withheld else r.reasoning} if r.reasoning else {}),
             **({"reason_withheld": withheld} if withheld else {}),
             **({"reasoning_says_nothing": r.says_nothing} if r.says_nothing else {}),
             "evidence": evidence_json(found, items)}
            for rank, (r, (withheld, found)) in enumerate(zip(result.ranked.itertuples(index=False), grounds), 1)
        ],
    }


def as_text(result: Recommendation, raw_user: str, params: RecommendParams, cf_model: str, items,
            seconds: float, grounds: list[tuple[str, Evidence]]) -> str:
    history_items, history_labels = result.history
    lines = [f"user {raw_user}: {params.model} re-ranked the top {params.candidates} unseen items of the CF model "
             f"{cf_model} ({seconds:.1f} s)",
             "history (latest, oldest first): " + "; ".join(
                 f"{items.at[i, 'title']} ({'liked' if v else 'not liked'})" for i, v in zip(history_items, history_labels)),
             f"{'rank':>4}  {'item':>6}  {'score':>7}  {'CF rank':>7}  title"]
    for rank, (r, (withheld, found)) in enumerate(zip(result.ranked.itertuples(index=False), grounds), 1):
        lines.append(f"{rank:>4}  {items.at[int(r.item), 'raw_id']:>6}  {r.score:>7.3f}  {int(r.cf_rank):>7}  "
                     f"{items.at[int(r.item), 'title']}")
        if r.says_nothing:
            lines.append(f"{'':>6}why: (the model's reason says nothing: {r.says_nothing})")
        elif withheld:
            lines.append(f"{'':>6}why: (reason withheld: {withheld})")
        elif r.reasoning:
            lines.append(f"{'':>6}why: {' '.join(r.reasoning.split())}")
        lines.append(f"{'':>6}because: {evidence_text(found)}")
    return "\n".join(lines)
