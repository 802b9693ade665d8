"""What an LLM recommender reads: its inputs under data/ (rec_inputs), and the directories its
stages write, data/rec/<variant>/ (+ data/predictions/<variant>.parquet for reported variants) and
metrics/<variant>_train.json (the paths themselves: pipeline/layout.py)."""
from __future__ import annotations

from pipeline import layout
from pipeline.layout import INGEST, METRICS_DIR, PREDICTIONS_DIR, REC_DIR  # noqa: F401 (the stages' paths)
from pipeline.rec.data import RecInputs
from pipeline.rec.examples import CFVectors, load_cf_vectors
from pipeline.rec.variants import VariantSpec


def selected_vectors(who: str) -> CFVectors:
    """The selected CF model's tables (data/cf_selected/: vectors, and a sequential model's per-row
    states when it exports them); `who` is named when a file is missing."""
    cf_dir = layout.CF_SELECTED_DIR
    row_states = cf_dir / "row_user_vectors.parquet"
    return load_cf_vectors(cf_dir / "user_vectors.parquet", cf_dir / "item_vectors.parquet", who,
                           row_states if row_states.exists() else None)


def rec_inputs(spec: VariantSpec) -> RecInputs:
    """The artifact paths a variant reads; CF vectors come from data/cf_selected/ (the CF model the
    cf_select stage chose: pipeline/cf/selected.py; with the per-row user states a sequential model
    exports, when it does)."""
    cf_dir = layout.CF_SELECTED_DIR if spec.cf_slots else None
    row_states = cf_dir / "row_user_vectors.parquet" if cf_dir else None
    return RecInputs(
        interactions=layout.INTERACTIONS,
        items=layout.ITEMS,
        subsets=layout.SUBSETS,
        topn_candidates=layout.TOPN_CANDIDATES if spec.topn else None,
        user_vectors=cf_dir / "user_vectors.parquet" if cf_dir else None,
        item_vectors=cf_dir / "item_vectors.parquet" if cf_dir else None,
        row_user_vectors=row_states if row_states is not None and row_states.exists() else None,
        keywords=layout.ITEM_KEYWORDS if spec.keywords else None,
        traces=layout.TRACES if spec.traces else None,
    )
