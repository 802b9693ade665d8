"""params.yaml's `ranking` section: the full-catalogue evaluation (pipeline/ranking)."""
from __future__ import annotations

from pydantic import Field

from pipeline.params import Strict


class RankingParams(Strict):
    retrieve_k: int = Field(ge=1)  # items the retriever proposes per user for an LLM re-ranker
    max_users: int | None = Field(default=None, ge=1)  # users ranked at most (seeded sample); None = all
    seed: int  # seed of that sample
