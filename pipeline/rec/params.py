"""params.yaml's `rec` section as pydantic models. params.yaml holds every default; these models
only validate (no field here carries a default of its own). Torch-free on purpose: a stage that reads
one key of `rec` (baselines: rec.prompt.history_items) imports pydantic, not the model code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError, model_validator

from pipeline.params import Strict, key_errors, nested_errors
from pipeline.sizes import SAME, StageRows

DEVICE_SETTING = r"^(auto|cpu|cuda(:\d+)?)$"  # what rec.device accepts (pipeline/rec/device.py)
DtypeSetting = Literal["auto", "bfloat16", "float32"]  # what a `dtype` key accepts (pipeline/rec/precision.py)
PRECISIONS = get_args(DtypeSetting)
CFSlot = Literal["user", "history", "target"]  # where a stage-2 prompt can carry CF vectors
CF_SLOTS = get_args(CFSlot)  # in rendered order (pipeline/rec/prompts.py)


class LossParams(Strict):
    bce_weight_single: float  # rows answered by one word; LM gets 1 - this
    bce_weight_multi: float  # rows answered by a reasoning trace; LM gets 1 - this


class LoraParams(Strict):
    r: int
    alpha: int
    dropout: float
    target_modules: list[str]
    layers: int | None = Field(ge=1)  # top layers that get LoRA; None = every layer


class PackingParams(Strict):
    """params.yaml rec.packing: how train rows are grouped into packs."""

    targets: int = Field(ge=1)  # rows per pack at most (1 = no packing)
    max_span_seconds: int = Field(ge=0)  # a pack's rows lie within this many seconds of its anchor
    seed: int  # order of the packs before the stages take their disjoint shares


class OptimizerParams(Strict):
    """The keys every LLM training section shares (rec.stage1 / rec.stage2, experts.train,
    rdrec.train): AdamW, linear warmup, micro-batch size, frozen-weight precision, seed. Each
    section's model inherits them, so params.yaml keeps them in its own section; the loop's
    settings are built from them in one place (pipeline/rec/training.py: loop_params)."""

    batch_size: int = Field(ge=1)  # packs per micro-batch
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_steps: int = Field(ge=0)
    dtype: DtypeSetting  # frozen weights' precision (precision.py: auto picks by hardware)
    seed: int


class EpochParams(OptimizerParams):
    """The reference runner's schedule keys (ThinkRec / CoLLM `minigpt4/runners/runner_base.py`:
    epochs, valid_small scored after each, the best kept, early stopping, its LR), shared by every
    section that can train in epochs (rec.stage1 / rec.stage2, experts.train), with the one check
    of which of them go together. The loop reads them by name (pipeline/rec/training.py: loop_params)."""

    epochs: int | None = Field(ge=1)  # None = one schedule; else up to this many, valid_small scored after each (training.py)
    steps_per_epoch: int | None = Field(ge=1)  # label optimizer steps per epoch; None = one pass over the packs
    patience: int | None = Field(ge=1)  # stop after this many validations in a row without a new best; None = never
    min_lr: float = Field(ge=0)  # where the cosine ends (0: at zero)
    warmup_lr: float | None = Field(ge=0)  # epochs only: the warmup's first LR (None: lr, no ramp)

    @model_validator(mode="after")
    def _one_schedule(self) -> "EpochParams":
        # a recommender stage's section also has `steps` (one schedule's length) and `eval_every`
        # (validations without epochs): read where the section has them
        fields = type(self).model_fields
        steps = self.steps if "steps" in fields else None
        eval_every = self.eval_every if "eval_every" in fields else 0
        problems = {}
        if self.epochs is not None:
            problems |= {key: f"not with epochs ({why})" for key, bad, why in (
                ("steps", steps is not None, "steps_per_epoch sets an epoch's length"),
                ("eval_every", eval_every > 0, "epochs score valid_small after every epoch"),
            ) if bad}
        else:
            problems |= {key: "only with epochs" for key in ("steps_per_epoch", "warmup_lr")
                         if getattr(self, key) is not None}
            if self.patience is not None and eval_every == 0:
                validations = "epochs, or eval_every > 0" if "eval_every" in fields else "epochs"
                problems["patience"] = f"needs validations ({validations})"
            if self.min_lr > self.lr:  # under epochs the reference's cosine runs from lr to min_lr, either way
                problems["min_lr"] = f"above lr {self.lr} (only under epochs, where the reference's cosine rises to it)"
        planned = steps if self.epochs is None else (
            self.epochs * self.steps_per_epoch if self.steps_per_epoch is not None else None)
        if planned is not None and self.warmup_steps >= planned:  # the LR would never leave its warmup
            problems["warmup_steps"] = (f"{self.warmup_steps} is not shorter than the {planned} steps the run plans "
                                        f"({'steps' if self.epochs is None else 'epochs x steps_per_epoch'})")
        if problems:
            raise key_errors(self, problems)
        return self


class TrainParams(EpochParams):
    """One training section of params.yaml (rec.stage1, rec.stage2): the defaults live there."""

    train_rows: StageRows  # distinct labelled train rows: a count, a fraction of the split, all, or (stage 2) same = stage 1's rows (pipeline/sizes.py)
    steps: int | None = Field(ge=1)  # label optimizer steps; None = one pass over the packs
    grad_accum: int = Field(ge=1)  # micro-batches per optimizer step
    reasoning_share: float = Field(ge=0, lt=1)  # share of micro-batches that are reasoning traces, added to the label ones
    eval_every: int = Field(ge=0)  # steps between validation scorings for checkpoint selection (0 = none)
    probe_rows: int = Field(ge=1)  # fixed training rows whose loss is logged before and after training


class PromptParams(Strict):
    version: str
    history_items: int = Field(ge=0)
    title_words: int = Field(ge=1)
    keywords_per_item: int = Field(ge=0)
    max_answer_tokens: int = Field(ge=1)
    # stage-2 variant -> the CF slots its prompt has (a variant not named: all of CF_SLOTS); the
    # names are checked against the registry where a stage-2 variant trains (recipe.check_cf_slots)
    cf_slots: dict[str, list[CFSlot]]

    @model_validator(mode="after")
    def _cf_slots_are_kinds(self) -> "PromptParams":
        for variant, kinds in self.cf_slots.items():
            if not kinds or len(set(kinds)) < len(kinds):
                raise ValueError(f"cf_slots.{variant}: one or more of {list(CF_SLOTS)}, each once (got {kinds})")
        return self

    def slots(self, variant: str) -> tuple[str, ...]:
        """The CF slots of `variant`'s prompts, in rendered order (stage-1 variants have none:
        they get no CF vectors)."""
        kinds = self.cf_slots.get(variant, CF_SLOTS)
        return tuple(kind for kind in CF_SLOTS if kind in kinds)


class ProjectorParams(Strict):
    expansion: int = Field(ge=1)
    match_embedding_norm: bool


class ScoringParams(Strict):
    batch_size: int = Field(ge=1)
    topn_batch_size: int = Field(ge=1)
    selection: Literal["weighted", "auc", "uauc"]  # weighted: AUC/4 + UAUC/3
    valid: bool


class RecParams(Strict):
    """params.yaml's `rec` section."""

    backbone: str
    threads: int = Field(ge=1)
    device: str = Field(pattern=DEVICE_SETTING)  # auto | cpu | cuda | cuda:N (pipeline/rec/device.py)
    answer_logit: Literal["yes_minus_no", "yes"]
    prompt: PromptParams
    lora: LoraParams
    projector: ProjectorParams
    loss: LossParams
    scoring: ScoringParams
    packing: PackingParams
    stage1: TrainParams
    stage2: TrainParams
    # variant -> fields of its stage's section it trains with instead (a second seed: {seed: 1})
    overrides: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _overrides_are_training_fields(self) -> "RecParams":
        if self.stage1.train_rows == SAME:
            raise ValueError("stage1.train_rows: 'same' is for stage2.train_rows only (stage 1's rows)")
        for variant, fields in self.overrides.items():
            unknown = sorted(set(fields) - set(TrainParams.model_fields))
            if unknown:
                raise ValueError(f"overrides.{variant}: {unknown} are not fields of rec.stage1 / rec.stage2")
            try:  # the variant's stage is the registry's (not imported here): one of the two must take it
                TrainParams.model_validate({**self.stage1.model_dump(), **fields})
            except ValidationError:
                try:
                    TrainParams.model_validate({**self.stage2.model_dump(), **fields})
                except ValidationError as err:
                    raise nested_errors(err, "overrides", variant) from None
        return self

    def training(self, variant: str, stage: int) -> TrainParams:
        """The training section `variant` uses: rec.stage<stage>, with its rec.overrides applied."""
        base = self.stage1 if stage == 1 else self.stage2
        fields = self.overrides.get(variant)
        return base.model_copy(update=TrainParams.model_validate({**base.model_dump(), **fields}).model_dump()) \
            if fields else base


@dataclass(frozen=True)
class RepetitionControls:
    """Repetition controls of generated reasons (explain.no_repeat_ngram_size, repetition_penalty);
    pipeline/rec/generate.py turns them into transformers' logits processors."""

    no_repeat_ngram_size: int = 0  # no n-gram of this many tokens occurs twice; 0 = off
    repetition_penalty: float = 1.0  # a generated token's logit is divided by this (multiplied if < 0); 1 = off
