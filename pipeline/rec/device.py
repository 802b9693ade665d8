"""Where the recommender's models and batches live: params.yaml `rec.device`.

"auto" is CUDA when torch sees a GPU, else the CPU; "cpu", "cuda" and "cuda:N" are taken as they
are, and a CUDA setting without CUDA is an error naming the param (never a silent CPU run). Under
torchrun each rank uses cuda:LOCAL_RANK (distributed.process_group sets it). Models are placed
once after they are built or loaded (`place_model`); batches are moved where they meet the model
(RecModel.run_body, rec_loss); scores leave the library as CPU numpy arrays. On the CPU every
move is a no-op, so the numbers are the ones an unplaced model computes.
"""
from __future__ import annotations

import os
import re

import torch
from torch import nn

from pipeline.rec.params import DEVICE_SETTING

PARAM = "rec.device"


def resolve_device(setting: str) -> torch.device:
    """The torch device of a `rec.device` setting on this machine (see the module docstring)."""
    if not re.match(DEVICE_SETTING, setting):
        raise ValueError(f"{PARAM} must be auto, cpu, cuda or cuda:N, got {setting!r}")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"{PARAM} is {setting!r} but torch sees no CUDA device "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                         f"set {PARAM}: auto or cpu, or install a CUDA build of torch")
    local_rank = os.environ.get("LOCAL_RANK") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    if local_rank is not None:
        if ":" in setting:
            raise ValueError(f"{PARAM} is {setting!r}, but under torchrun each rank uses cuda:LOCAL_RANK: "
                             f"set {PARAM}: auto or cuda")
        return torch.device("cuda", int(local_rank))
    device = torch.device(setting if ":" in setting else "cuda")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{PARAM} is {setting!r} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return device


def place_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """`model` with every parameter and buffer on `device` (in place; a no-op where they already are)."""
    return model.to(device)
