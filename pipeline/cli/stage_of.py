"""Which `dvc repro` stage writes an artifact the commands read, for 'run this first' messages.

Read from dvc.yaml's outs (generated from pipeline/registry.py and pipeline/layout.py), so the
answer cannot drift from the pipeline: `foreach` stages expand to `<stage>@<item>`, `${key}` is
looked up in params.yaml.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from pipeline.errors import MissingInput

DVC_YAML = Path("dvc.yaml")
PARAMS = Path("params.yaml")
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class MissingArtifact(MissingInput):
    def __init__(self, path: Path, stage: str):
        super().__init__(f"{path} is missing: run `dvc repro {stage}` first (or `make repro` for everything)")
        self.path, self.stage = path, stage


def _lookup(params: dict, key: str):
    """params.yaml's value at the dotted `key`; KeyError when params.yaml lacks it."""
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _resolve(text: str, params: dict, item=None) -> str:
    return _VARIABLE.sub(lambda match: str(item if match.group(1) == "item" else _lookup(params, match.group(1))), text)


def _out_path(out) -> str:
    return next(iter(out)) if isinstance(out, dict) else out


def _stages(dvc_yaml: Path, params: dict):
    """(stage, its body, its foreach item or None) of every stage of dvc.yaml, `foreach` expanded to
    `<stage>@<item>`; a stage whose `foreach` names a key params.yaml lacks is left out."""
    pipeline = yaml.safe_load(dvc_yaml.read_text()) if dvc_yaml.exists() else {}
    for name, body in ((pipeline or {}).get("stages") or {}).items():
        if "foreach" not in body:
            yield name, body, None
            continue
        items = body["foreach"]
        if isinstance(items, str):
            try:
                items = _lookup(params, _VARIABLE.fullmatch(items).group(1))
            except KeyError:
                continue
        for item in items:
            yield f"{name}@{item}", body["do"], item


def _params(params_file: Path) -> dict:
    return (yaml.safe_load(params_file.read_text()) or {}) if params_file.exists() else {}


def stage_outputs(dvc_yaml: Path = DVC_YAML, params_file: Path = PARAMS) -> dict[Path, str]:
    """Every out of dvc.yaml (outs, metrics) -> the stage that writes it."""
    params = _params(params_file)
    outputs = {}
    for stage, spec, item in _stages(dvc_yaml, params):
        try:
            for out in [*(spec.get("outs") or []), *(spec.get("metrics") or [])]:
                outputs[Path(_resolve(_out_path(out), params, item))] = stage
        except KeyError:  # a `${key}` params.yaml does not have: that stage's outs are not known
            continue
    return outputs


def declared_params(stage: str, dvc_yaml: Path = DVC_YAML, params_file: Path = PARAMS) -> list[str] | None:
    """The params.yaml keys dvc.yaml's `stage` declares (`cf@mf`: its foreach item substituted),
    the keys DVC reruns it on; None when dvc.yaml is absent or has no such stage."""
    params = _params(params_file)
    for name, spec, item in _stages(dvc_yaml, params):
        if name == stage:
            return [_resolve(key, params, item) for key in spec.get("params") or [] if isinstance(key, str)]
    return None


def producing_stage(path: Path, outputs: dict[Path, str] | None = None) -> str:
    """The stage whose out is `path` or a directory holding it; "" when no stage writes it."""
    outputs = stage_outputs() if outputs is None else outputs
    path = Path(path)
    for candidate in [path, *path.parents]:
        if candidate in outputs:
            return outputs[candidate]
    return ""


def rebuild_hint(path: Path) -> str:
    """What rebuilds the damaged artifact `path`: the stage whose out holds it."""
    path = Path(path)
    stage = producing_stage(Path(os.path.relpath(path)) if path.is_absolute() else path)
    return f"run `dvc repro {stage}` to rebuild it" if stage else "rebuild it with the stage that writes it"


def require(paths: list[Path]) -> None:
    """Raise MissingArtifact for the first of `paths` that does not exist."""
    for path in paths:
        if not Path(path).exists():
            raise MissingArtifact(Path(path), producing_stage(path) or "<the stage that writes it>")
