"""One handle on a trained LLM recommender, loaded by its registry name (RecBole's shape: load any
model by name, then score with it), so every consumer builds the same prompts and the same model.

`load_recommender("thinkrec", ...)` is a trained variant (data/rec/<name>/) with the artifacts its
prompts read; `load_recommender("thinkrec_experts", ...)` is the stage-2 variant its experts are
scored in, with the experts (data/experts/expert_<k>/) fused into its top layers and the gate
(data/experts/gate/) weighing them per prompt. Either way:

    examples = recommender.encode(frame)              # the variant's prompts, CF slots and keywords as trained
    recommender.score(examples, batch_size)           # one answer score per row
    recommender.score_candidates(examples, batch_size)  # one user's candidates: the shared history once
    recommender.reasons(examples, batch_size, max_new_tokens)  # greedy reasoning

The handle reads artifacts from pipeline/layout.py's paths and settings from the params models it
is given, never params.yaml: the stages and the CLI read params and call it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline import layout, registry
from pipeline.rec.assign import assign_weights
from pipeline.rec.clustering import read_clustering, used_expert_dirs
from pipeline.rec.data import Encoder, RecInputs, VariantData, load_variant_data, variant_encoder
from pipeline.rec.device import resolve_device
from pipeline.rec.examples import RecExample
from pipeline.rec.fused import install_experts
from pipeline.rec.gate import Gate, read_gate
from pipeline.rec.generate import RepetitionControls
from pipeline.rec.inputs import rec_inputs
from pipeline.rec.model import RecModel, load_rec_model
from pipeline.rec.params import PromptParams, RecParams
from pipeline.rec.precision import resolve_precision
from pipeline.rec.reasoning import write_reasoning
from pipeline.rec.scoring import score_candidates, score_examples
from pipeline.rec.variants import VariantSpec, get_variant


@dataclass
class Recommender:
    """A trained recommender ready to encode, score and explain rows in its own prompt form."""

    name: str  # the registry name it was loaded by
    spec: VariantSpec  # the variant whose weights and prompts it uses (for experts: the one they are fused into)
    rec: RecModel  # loaded: eval mode, nothing trainable (train_variant wraps one it trains); experts fused into its top layers when it has them
    data: VariantData  # items, keywords, CF tables (and, when asked for, traces) its prompts read
    prompt: PromptParams  # rec.prompt: the prompt form it was trained with
    precision: str  # its frozen weights' dtype, resolved (bfloat16 | float32): the methods' default
    gate: Gate | None = None  # with experts: weighs them per prompt from the user's CF state
    warm_users: frozenset[int] = frozenset()  # the clustered users (the gate's cold rule: the others are cold)
    encoder: Encoder = field(init=False, repr=False)  # the variant's own: keywords and CF slots as trained

    def __post_init__(self):
        self.encoder = variant_encoder(self.spec, self.prompt, self.rec.tokenizer, self.data)

    def encode(self, frame: pd.DataFrame, traces: dict[int, str] | None = None,
               desc: str | None = None) -> list[RecExample]:
        """RecExamples of `frame`'s rows (INTERACTIONS columns), each with its expert weights when
        the model has a gate (the user's CF state before the row picks them)."""
        examples = self.encoder(frame, traces, desc or f"encode {self.spec.name}")
        if self.gate is not None:
            assign_weights(examples, self.gate, self.data.vectors, set(self.warm_users))
        return examples

    def score(self, examples: Sequence[RecExample], batch_size: int, dtype: str | None = None,
              desc: str = "score") -> np.ndarray:
        """(m,) answer scores of independent rows (pipeline/rec/scoring.py: score_examples)."""
        return score_examples(self.rec, examples, batch_size, dtype or self.precision, desc)

    def score_candidates(self, examples: Sequence[RecExample], batch_size: int, dtype: str | None = None,
                         desc: str = "top-N") -> np.ndarray:
        """(m,) answer scores of candidates grouped by user, each user's history run once."""
        return score_candidates(self.rec, examples, batch_size, dtype or self.precision, desc)

    def reasons(self, examples: Sequence[RecExample], batch_size: int, max_new_tokens: int,
                min_new_tokens: int = 0, dtype: str | None = None,
                controls: RepetitionControls = RepetitionControls(), desc: str | None = None) -> list[str]:
        """The model's greedy reasoning for `examples`, in order. Casts the whole model to `dtype`
        (pipeline/rec/reasoning.py), so score first; no examples cast nothing."""
        if not examples:
            return []
        return write_reasoning(self.rec, examples, batch_size, max_new_tokens, min_new_tokens,
                               dtype or self.precision, desc or f"reasons {self.spec.name}", controls)


def base_variant(name: str) -> VariantSpec:
    """The LLM variant whose weights and prompts registry model `name` uses: itself, or for a
    fused-experts model the variant its experts are fused into (an unknown name: get_variant's KeyError)."""
    starts_from = {entry.name: entry.starts_from for entry in registry.models("experts", default_run=False)}
    return get_variant(starts_from.get(name, name))


def variant_data(spec: VariantSpec, traces: bool = False, inputs: RecInputs | None = None) -> VariantData:
    """What `spec`'s prompts read (from `inputs`, default rec_inputs of `spec`: the selected CF model's), its
    reasoning traces only when asked for: a model needs its data without loading its weights (the
    centroid gate routes rows by their CF states alone)."""
    return load_variant_data(spec if traces else spec.without_traces(), inputs or rec_inputs(spec))


def load_recommender(
    name: str, params: RecParams, dtype: str | None = None, *,
    upper_layers: int | None = None, gate: bool = True, traces: bool = False,
    inputs: RecInputs | None = None, model_dir: Path | None = None,
) -> Recommender:
    """Registry model `name` on `params.backbone`, placed on `params.device`, frozen weights in
    `dtype` (None: the dtype its variant trained in), with the artifacts its prompts read.

    upper_layers: a fused-experts model's top layers that hold the experts (experts.train.upper_layers).
    gate: False loads a fused-experts model without its gate (the gate stage, training one).
    traces: also read the variant's reasoning traces (training answers, never part of a prompt).
    inputs: the artifact paths read (default: rec_inputs of the variant, CF vectors of data/cf_selected/).
    model_dir: the saved variant (default: data/rec/<variant>/; a sweep's directory in a benchmark)."""
    spec = base_variant(name)
    fused = spec.name != name
    if fused and upper_layers is None:
        raise ValueError(f"{name} fuses experts into its top layers: give upper_layers (experts.train.upper_layers)")
    device = resolve_device(params.device)
    precision = resolve_precision(dtype or params.training(spec.name, spec.stage).dtype, device)
    rec = load_rec_model(params.backbone, model_dir or layout.rec_dir(spec.name), device, precision)
    chosen, warm = None, frozenset()
    if fused:
        clustering, user_clusters = read_clustering()
        install_experts(rec, used_expert_dirs(clustering), upper_layers)
        rec.eval()
        chosen = read_gate() if gate else None
        warm = frozenset(user_clusters["user"].astype(int))
    data = variant_data(spec, traces, inputs)
    return Recommender(name, spec, rec, data, params.prompt, precision, chosen, warm)

