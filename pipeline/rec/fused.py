"""ThinkRec with experts: the stage-2 model (stage-1 LoRA + projector) whose top layers' LoRA
modules are replaced by fused layers holding every expert (pipeline/rec/fusion.py).

Experts are saved as whole peft adapters (the stage-1 LoRA with the top layers trained on one
cluster): each loads as it is in any engine that takes one LoRA per request (vLLM
`--enable-lora`). The fused model reads only their top layers; its last expert is the global one,
the stage-1 LoRA itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from peft.tuners.lora import Linear as LoraLinear

from pipeline.artifacts import load_safetensors
from pipeline.errors import MissingInput
from pipeline.rec.fusion import ExpertLoRALinear, fused_layers
from pipeline.rec.model import ADAPTER_DIR, ADAPTER_FILE, RecModel
from pipeline.rec.split_body import upper_layer_indices


def adapter_factors(adapter_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """'<layer>.<module path>' -> (A (r, in), B (out, r)) of a saved peft LoRA adapter, keyed by the
    module path from "layers." on (e.g. 'layers.29.self_attn.q_proj')."""
    path = Path(adapter_dir) / ADAPTER_FILE
    if not path.exists():
        raise MissingInput(f"{path}: no LoRA adapter (run the expert stage first)")
    tensors = load_safetensors(path)  # a damaged file: an UnreadableArtifact naming it
    factors: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if ".lora_A." not in key and ".lora_B." not in key:
            continue
        module = key[key.index("layers.") :].split(".lora_")[0]
        factors.setdefault(module, {})["A" if ".lora_A." in key else "B"] = value
    return {module: (parts["A"], parts["B"]) for module, parts in factors.items()}


def install_experts(rec: RecModel, expert_dirs: Sequence[Path], upper: int) -> int:
    """Replace the LoRA modules of the top `upper` layers of `rec` (which holds the global
    adapter) by fused layers over [experts in `expert_dirs` order..., global]. Returns E."""
    if fused_layers(rec.body):
        raise ValueError("experts are already installed in this model")
    experts = [adapter_factors(Path(d) / ADAPTER_DIR) for d in expert_dirs]
    layers = set(upper_layer_indices(rec, upper))
    installed = 0
    for name, module in list(rec.body.named_modules()):
        if not isinstance(module, LoraLinear):
            continue
        key = name[name.index("layers.") :] if "layers." in name else name
        if int(key.split(".")[1]) not in layers:
            continue
        adapter = module.active_adapters[0]
        device = module.lora_A[adapter].weight.device  # the loaded factors join the model where it is
        a = [e[key][0].to(device) if key in e else _missing(key, expert_dirs) for e in experts]
        b = [e[key][1].to(device) for e in experts]
        a.append(module.lora_A[adapter].weight.detach())
        b.append(module.lora_B[adapter].weight.detach())
        fused = ExpertLoRALinear(module.base_layer, torch.stack(a), torch.stack(b), module.scaling[adapter])
        parent = rec.body.get_submodule(name.rsplit(".", 1)[0])
        setattr(parent, name.rsplit(".", 1)[1], fused)
        installed += 1
    if not installed:
        raise ValueError(f"no LoRA modules in the top {upper} layers to fuse")
    return len(experts) + 1


def _missing(key: str, expert_dirs) -> None:
    raise KeyError(f"an expert adapter in {[str(d) for d in expert_dirs]} has no LoRA for {key}")
