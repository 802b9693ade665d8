"""params.yaml's `recommend` section (the `thinkrec recommend` command; no stage reads it)."""
from __future__ import annotations

from pydantic import Field

from pipeline.params import Strict


class RecommendParams(Strict):
    model: str  # trained LLM recommender (data/rec/<model>/)
    candidates: int | None = Field(ge=1)  # unseen items the CF model proposes for re-ranking; None: ranking.retrieve_k
    k: int = Field(ge=1)  # recommendations shown
    explain: int = Field(ge=0)  # top recommendations the model writes its reasoning for
    threads: int = Field(ge=1)  # torch CPU threads
