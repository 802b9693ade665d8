"""Where every artifact lives, relative to the project root.

The one list of paths: the stages read and write these, and `python -m stages.dvc_yaml` writes the
same paths into dvc.yaml's deps and outs, so the two cannot disagree. Per-model paths are functions
of the model's name (pipeline/registry.py lists the models).
"""
from __future__ import annotations

from pathlib import Path

DATA = Path("data")

INGEST = DATA / "ingest"
INTERACTIONS = INGEST / "interactions.parquet"
USERS = INGEST / "users.parquet"
ITEMS = INGEST / "items.parquet"
SUBSETS = INGEST / "subsets.parquet"
TOPN_CANDIDATES = INGEST / "topn_candidates.parquet"
CARD = INGEST / "card.json"  # the dataset card: counts per split and subset (pipeline/ingest/card.py)
SIZES_DIR = DATA / "sizes"  # every dataset-dependent size, resolved and checked (pipeline/sizes.py)

KEYWORDS_DIR = DATA / "keywords"
ITEM_KEYWORDS = KEYWORDS_DIR / "item_keywords.parquet"
TRACES_DIR = DATA / "traces"
TRACES = TRACES_DIR / "traces.parquet"
GOLD_TRACES = TRACES_DIR / "gold_traces.parquet"  # test_tiny rows the explanations are scored against
RATIONALES_DIR = DATA / "rationales"
RATIONALES = RATIONALES_DIR / "rationales.parquet"
EXPLANATIONS_DIR = DATA / "explanations"

PREDICTIONS_DIR = DATA / "predictions"
RANKING_DIR = DATA / "ranking"
CF_DIR = DATA / "cf"
# the CF model that feeds the LLM stages (params cf.model, resolved by the cf_select stage): a byte copy of its
# data/cf/<model>/ files and predictions, with selected.json naming it (pipeline/cf/selection.py)
CF_SELECTED_DIR = DATA / "cf_selected"
REC_DIR = DATA / "rec"
RDREC_DIR = DATA / "rdrec"
EXPERTS_DIR = DATA / "experts"
CLUSTERS_DIR = EXPERTS_DIR / "clusters"
GATE_DIR = EXPERTS_DIR / "gate"

METRICS_DIR = Path("metrics")
ROC_DIR = Path("plots/roc")


def predictions(model: str) -> Path:
    """A model's scores of evaluation rows and top-N candidates (schemas.PREDICTIONS)."""
    return PREDICTIONS_DIR / f"{model}.parquet"


def ranking(model: str) -> Path:
    """A model's full-catalogue ranks of the held-out targets (schemas.RANKS)."""
    return RANKING_DIR / f"{model}.parquet"


def reranked(model: str) -> Path:
    """A re-ranker's scores of the retriever's top K per evaluated user (schemas.RERANKED)."""
    return RANKING_DIR / f"{model}_candidates.parquet"


def sizes(section: str) -> Path:
    """The sizes of one params.yaml section resolved against the dataset (data/sizes/rec.json)."""
    return SIZES_DIR / f"{section}.json"


def cf_dir(model: str) -> Path:
    """A CF model's user and item vectors (and a sequential model's per-row user states)."""
    return CF_DIR / model


def rec_dir(variant: str) -> Path:
    """An LLM-recommender variant's adapters and projector."""
    return REC_DIR / variant


def rdrec_dir(student: str) -> Path:
    return RDREC_DIR / student


def expert_dir(slot: int) -> Path:
    return EXPERTS_DIR / f"expert_{slot}"


def metrics(name: str) -> Path:
    """metrics/<name>.json: evaluate's headline of a model (the DVC metrics), or a stage's own
    summary (keywords, gate: kept in git, not DVC metrics). Each carries its provenance stamp."""
    return METRICS_DIR / f"{name}.json"


def metrics_detail(model: str) -> Path:
    """Everything evaluate measured of a model beside metrics/<model>.json's headline: warm and cold
    users, every cutoff, ties, paired comparisons (pipeline/metrics/report.py: split_report). Kept in
    git like metrics/, but not a DVC metric: `dvc metrics show` stays one screen wide."""
    return METRICS_DIR / "detail" / f"{model}.json"


def train_metrics(model: str) -> Path:
    """What training a model measured: rows, steps, timings, precision."""
    return METRICS_DIR / f"{model}_train.json"


def scoring_metrics(model: str) -> Path:
    """What scoring a model that trains nothing measured (thinkrec_experts: timings, routing)."""
    return METRICS_DIR / f"{model}_scoring.json"


def expert_metrics(slot: int) -> Path:
    return METRICS_DIR / "experts" / f"expert_{slot}.json"


def roc(model: str) -> Path:
    return ROC_DIR / f"{model}.json"
