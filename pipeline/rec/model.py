"""The recommender model: a Hugging Face causal LM + peft LoRA + the CF projector.

Only the adapter (peft `save_pretrained`) and the projector weights are ever saved; the backbone is
reloaded from its path or id, so a trained variant is a few MB.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.artifacts import UnreadableArtifact, load_safetensors, read_json_object
from pipeline.rec.batching import RecBatch
from pipeline.rec.device import place_model
from pipeline.rec.fusion import routing
from pipeline.rec.packing import packed_attention_mask
from pipeline.rec.params import LoraParams
from pipeline.rec.precision import resolve_precision, torch_dtype
from pipeline.rec.projector import CFProjector, load_projector
from pipeline.rec.prompts import answer_token_ids
from pipeline.rec.soft_tokens import embed_with_soft_tokens

ADAPTER_DIR = "adapter"
ADAPTER_FILE = "adapter_model.safetensors"  # peft's file of a saved LoRA adapter
PROJECTOR_FILE = "projector.pt"


def lora_layer_indices(n_layers: int, layers: int | None) -> list[int] | None:
    """peft's `layers_to_transform` for LoRA on the top `layers` of `n_layers` (None: every layer).
    Below the lowest adapted layer nothing trains, so a stage-1 step neither keeps activations for
    nor back-propagates through the lower layers."""
    if layers is None:
        return None
    if layers > n_layers:
        raise ValueError(f"rec.lora.layers: the backbone has {n_layers} layers, got {layers}")
    return list(range(n_layers - layers, n_layers))


ANSWER_LOGITS = ("yes_minus_no", "yes")


class RecModel(nn.Module):
    """LLM (a PeftModel) + optional projector, with the tokenizer and the Yes/No token ids.

    `answer_logit` is what BCE trains and what scoring returns: "yes" = the raw "Yes" logit (the
    paper's); "yes_minus_no" = logit(Yes) - logit(No), the log-odds of Yes among {Yes, No}. The raw
    Yes logit of an instruct model starts near +15 for every prompt, so short runs spend their steps
    pulling it down instead of ranking; the difference starts near 0 and agrees with the LM loss."""

    def __init__(self, llm: PeftModel, tokenizer, projector: CFProjector | None, answer_logit: str = "yes_minus_no"):
        super().__init__()
        if answer_logit not in ANSWER_LOGITS:
            raise ValueError(f"answer_logit must be one of {ANSWER_LOGITS}, got {answer_logit!r}")
        self.llm, self.tokenizer, self.projector, self.answer_logit_kind = llm, tokenizer, projector, answer_logit
        self.yes_id, self.no_id = answer_token_ids(tokenizer)
        base = llm.get_base_model()
        # a tuple, so these views into `llm` are not registered twice as submodules
        self._parts = (base.get_decoder(), base.get_output_embeddings())

    @property
    def body(self) -> nn.Module:
        """The transformer stack without lm_head (LoRA layers inside)."""
        return self._parts[0]

    @property
    def lm_head(self) -> nn.Module:
        return self._parts[1]

    @property
    def device(self) -> torch.device:
        """Where the model's input embeddings are: batches are moved there (run_body)."""
        return self.llm.get_input_embeddings().weight.device

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def input_embeddings(self, batch: RecBatch) -> torch.Tensor:
        """(B, T, H) token embeddings with projected CF vectors written into the slot positions."""
        projected = None
        if batch.slot_vectors is not None:
            if self.projector is None:
                raise ValueError("prompts carry CF slots but the model has no projector")
            weight = self.projector.net[0].weight
            projected = self.projector(batch.slot_vectors.to(weight.dtype), batch.slot_kind)
        return embed_with_soft_tokens(
            self.llm.get_input_embeddings(), batch.input_ids, batch.slot_batch, batch.slot_position, projected
        )

    def answer_logit(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B,) float32 score from (B, H) hidden states at the answer position: only the Yes (and No)
        rows of lm_head are applied, in fp32 with autocast off. (In bf16 a logit near 15 can only
        move in steps of 0.0625, which ties most scores: 11 distinct values over 609 rows.)"""
        ids = [self.yes_id] + ([self.no_id] if self.answer_logit_kind == "yes_minus_no" else [])
        with torch.autocast(hidden.device.type, enabled=False):
            weight = self.lm_head.weight[ids].float()  # (1 or 2, H)
            logits = hidden.float() @ weight.T
            if getattr(self.lm_head, "bias", None) is not None:
                logits = logits + self.lm_head.bias[ids].float()
        return logits[:, 0] - logits[:, 1] if logits.shape[1] == 2 else logits[:, 0]

    def run_body(self, batch: RecBatch, **kwargs):
        """The body's output for `batch` (CF soft tokens written in; each row routed to its own
        expert mixture when the model fuses experts, pipeline/rec/fusion.py). `batch` is moved to the model's
        device; kwargs go to the body as they are (attention_mask defaults to the batch's)."""
        batch = batch.to(self.device)
        for key, value in body_mask(batch).items():
            kwargs.setdefault(key, value)
        with routing(self.body, batch.expert_weights):
            return self.body(inputs_embeds=self.input_embeddings(batch), **kwargs)

    def hidden_states(self, batch: RecBatch) -> torch.Tensor:
        """(B, T, H) last hidden states of the body; no logits are computed here."""
        return self.run_body(batch, use_cache=False).last_hidden_state


def body_mask(batch: RecBatch) -> dict[str, torch.Tensor]:
    """The body's attention_mask (and, for packs, position_ids) for `batch`: the (B, T) padding
    mask, or for packs the (B, 1, T, T) segment mask (packing.packed_attention_mask)."""
    if batch.segments is None:
        return {"attention_mask": batch.attention_mask}
    return {"attention_mask": packed_attention_mask(batch.segments), "position_ids": batch.position_ids}


def freeze_lora_dropout(rec: RecModel) -> None:
    """Dropout off in every LoRA layer: a frozen LoRA (stage 2 trains the projector on it) then
    computes in training what it computes in scoring."""
    for name, module in rec.llm.named_modules():
        if name.rsplit(".", 2)[-2:-1] == ["lora_dropout"] and isinstance(module, nn.Dropout):
            module.p = 0.0


def use_precision(rec: RecModel, dtype: str) -> None:
    """"auto": bf16 where the hardware has it (precision.py). "bfloat16": cast the frozen backbone weights to bf16 once (LoRA factors, trainable
    parameters and the projector stay fp32), so no autocast re-casts them at every step; the
    answer logits stay fp32 (answer_logit). "float32": everything fp32."""
    target = torch_dtype(resolve_precision(dtype, rec.device))
    for name, parameter in rec.llm.named_parameters():
        if not parameter.requires_grad and "lora_" not in name:
            parameter.data = parameter.data.to(target)


def load_backbone(path: str):
    """(model, tokenizer) of any HF causal LM path or id, fp32 weights (bf16 is applied by autocast)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tokenizer


def build_rec_model(
    backbone: str,
    lora: LoraParams,
    init_from: Path | None = None,
    train_lora: bool = True,
    cf_dim: int | None = None,
    projector_expansion: int = 10,
    answer_logit: str = "yes_minus_no",
    calibration_vectors: np.ndarray | None = None,
    calibration_users: np.ndarray | None = None,
    frozen_dtype: str = "float32",
    device: torch.device | str = "cpu",
) -> RecModel:
    """A model ready to train: new LoRA (or the one saved in `init_from`, trainable or frozen), and a
    projector when `cf_dim` is given (loaded from `init_from` when it has one, else freshly made and,
    with `calibration_vectors` (item CF vectors) and `calibration_users` (user vectors or states),
    scaled per slot kind to the token embeddings' norm). The frozen
    weights are cast to `frozen_dtype` (use_precision) before the model is placed on `device`
    (pipeline/rec/device.py: resolve_device(rec.device)), so a GPU receives them already in bf16."""
    frozen_dtype = resolve_precision(frozen_dtype, device)
    model, tokenizer = load_backbone(backbone)
    if init_from is None:
        config = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules), task_type="CAUSAL_LM",
            layers_to_transform=lora_layer_indices(model.config.num_hidden_layers, lora.layers),
        )
        llm = get_peft_model(model, config)
        if not train_lora:
            llm.requires_grad_(False)
    else:
        llm = PeftModel.from_pretrained(model, Path(init_from) / ADAPTER_DIR, is_trainable=train_lora)
    projector = None
    if cf_dim is not None:
        saved = Path(init_from) / PROJECTOR_FILE if init_from is not None else None
        if saved is not None and saved.exists():
            projector = load_projector(saved)
        else:
            projector = CFProjector(cf_dim, model.config.hidden_size, projector_expansion)
            if calibration_vectors is not None:
                users = torch.from_numpy(calibration_users) if calibration_users is not None else None
                projector.calibrate(torch.from_numpy(calibration_vectors), llm.get_input_embeddings().weight, users)
        if projector.cf_dim != cf_dim:
            raise ValueError(f"{saved}: projector expects CF vectors of size {projector.cf_dim}, got {cf_dim}")
    return _cast_and_place(RecModel(llm, tokenizer, projector, answer_logit), frozen_dtype, device)


def _cast_and_place(rec: RecModel, frozen_dtype: str, device: torch.device | str) -> RecModel:
    """Frozen weights cast first, then moved: an 8B backbone reaches the GPU as 16 GB of bf16 rather
    than 32 GB of fp32 cast there. On the CPU the cast is the one training and scoring apply anyway
    (use_precision is idempotent) and the move is a no-op."""
    use_precision(rec, frozen_dtype)
    return place_model(rec, device)


def save_adapter(llm: PeftModel, directory: Path) -> None:
    """peft `save_pretrained`, then adapter_config.json rewritten with its set-valued fields sorted:
    peft stores `target_modules` as a set and writes it in the process's string-hash order, so the
    same adapter would get different bytes (and DVC hashes) in two processes."""
    llm.save_pretrained(directory)
    config_path = Path(directory) / "adapter_config.json"
    config = json.loads(config_path.read_text())
    for key in ("target_modules", "exclude_modules", "modules_to_save"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_rec_model(rec: RecModel, out_dir: Path) -> None:
    """Write `out_dir/adapter/` (LoRA only) and `out_dir/projector.pt` (when there is a projector)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_adapter(rec.llm, out_dir / ADAPTER_DIR)
    if rec.projector is not None:
        torch.save({"config": rec.projector.config(), "state": rec.projector.state_dict()}, out_dir / PROJECTOR_FILE)
    meta = {"has_projector": rec.projector is not None, "answer_logit": rec.answer_logit_kind}
    (out_dir / "model.json").write_text(json.dumps(meta) + "\n")


def load_rec_model(
    backbone: str, model_dir: Path, device: torch.device | str = "cpu", frozen_dtype: str = "float32"
) -> RecModel:
    """A trained variant for scoring or generation (eval mode, nothing trainable), its frozen weights
    in `frozen_dtype` (precision.py: auto picks by hardware), on `device`."""
    frozen_dtype = resolve_precision(frozen_dtype, device)
    meta, projector = check_saved_model(model_dir)
    model, tokenizer = load_backbone(backbone)
    llm = PeftModel.from_pretrained(model, Path(model_dir) / ADAPTER_DIR, is_trainable=False)
    rec = RecModel(llm, tokenizer, projector, meta["answer_logit"])
    rec.requires_grad_(False)
    return _cast_and_place(rec, frozen_dtype, device).eval()


def check_saved_model(model_dir: Path) -> tuple[dict, CFProjector | None]:
    """(model.json, the projector) of a saved variant, every file save_rec_model wrote opened with the
    project's loaders before the backbone loads: a damaged or foreign one is an UnreadableArtifact
    naming it (a command adds the stage that rebuilds it), not a traceback from inside peft or
    torch, and it is found before the slow part. The adapter is read twice: a few MB."""
    model_dir = Path(model_dir)
    meta = read_json_object(model_dir / "model.json")
    read_json_object(model_dir / ADAPTER_DIR / "adapter_config.json")
    load_safetensors(model_dir / ADAPTER_DIR / ADAPTER_FILE)
    saved = model_dir / PROJECTOR_FILE
    if saved.exists():
        return meta, load_projector(saved)
    if meta.get("has_projector"):  # else scoring fails later, naming neither the file nor its stage
        raise UnreadableArtifact(saved, "missing, though model.json says the model has a projector")
    return meta, None


def trainable_state(rec: RecModel) -> dict[str, torch.Tensor]:
    """Copies of the trainable parameters and the projector's buffers (for best-checkpoint keeping)."""
    state = {n: p.detach().clone() for n, p in rec.named_parameters() if p.requires_grad}
    if rec.projector is not None:
        state.update({f"projector.{n}": b.detach().clone() for n, b in rec.projector.named_buffers()})
    return state


def restore_state(rec: RecModel, state: dict[str, torch.Tensor]) -> None:
    missing = set(state) - set(rec.state_dict())
    if missing:
        raise KeyError(f"cannot restore unknown tensors {sorted(missing)[:3]}")
    rec.load_state_dict(state, strict=False)
