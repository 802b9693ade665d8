"""Load one section of params.yaml into the stage's pydantic model (unknown keys are an error)."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

Section = TypeVar("Section", bound=BaseModel)

PARAMS_FILE = Path("params.yaml")


class CFChoice(BaseModel):
    """Only `cf.model` of the cf section (the rest belongs to the cf stage): which CF model's
    vectors and predictions the later stages read."""

    model_config = ConfigDict(extra="ignore")
    model: str


def load_section(name: str, model: type[Section], path: Path = PARAMS_FILE) -> Section:
    """Return params.yaml's section `name` validated as `model`, naming the bad key on error."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; run stages from the project root")
    params = yaml.safe_load(path.read_text()) or {}
    if name not in params:
        raise KeyError(f"{path}: no section '{name}'")
    try:
        return model.model_validate(params[name])
    except ValidationError as err:
        raise ValueError(f"{path}: invalid section '{name}':\n{err}") from err
