"""Params profiles (profiles/*.yaml): each holds only the params.yaml keys a setting changes (a
dataset, a model scale), nested as in params.yaml. They become `dvc exp run -S key=value` arguments,
so DVC itself applies them and records them in the experiment; a key the profile names that
params.yaml lacks is an error naming the profile and the key. `overlay` lays keys over a parsed
section the same way (tests and benchmarks take params.yaml's section and change a few keys).

Usage: eval dvc exp run $(python -m pipeline.profiles profiles/thinkrec-reference.yaml profiles/ml1m.yaml)

`-S` changes params.yaml, not dvc.yaml: where profiles set a key that decides which stages and deps
dvc.yaml lists (DVC_YAML_KEYS), write it for them first, `python -m stages.dvc_yaml --write
--profiles <the same profiles>`; the command says so on stderr.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

# params keys that stages/dvc_yaml.py reads to decide dvc.yaml's stages and deps (a key or its subkeys)
DVC_YAML_KEYS = ("experts.slots", "rec.overrides", "traces.hard_scores", "hard_scores.model")


def flatten(tree: dict, prefix: str = "", maps: frozenset[str] = frozenset()) -> dict[str, Any]:
    """{"a": {"b": 1, "c": [2]}} -> {"a.b": 1, "a.c": [2]}: mappings nest, anything else is a leaf;
    so is a mapping at a path in `maps` (a params key whose value is a map of its own, e.g.
    rec.prompt.cf_slots: a profile sets it whole)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in maps:
            flat.update(flatten(value, path + ".", maps))
        else:
            flat[path] = value
    return flat


def overlay(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` laid over it as `-S` sets would be: where both hold a mapping the two
    merge key by key, anything else in `overrides` replaces (neither input is modified)."""
    result = dict(base)
    for key, value in overrides.items():
        below = result.get(key)
        result[key] = overlay(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return result


def profile_sets(params: dict, profiles: list[Path]) -> dict[str, Any]:
    """The `key: value` pairs `profiles` set (a later profile wins), each checked to exist in
    `params` (the parsed params.yaml)."""
    known = flatten(params)
    maps = frozenset(key for key, value in known.items() if value == {})  # open maps: set whole
    sets: dict[str, Any] = {}
    for path in profiles:
        overlay = yaml.safe_load(Path(path).read_text())
        if not isinstance(overlay, dict):
            raise ValueError(f"{path}: a profile is a mapping of params.yaml sections")
        for key, value in flatten(overlay, maps=maps).items():
            if key not in known:
                raise KeyError(f"{path}: '{key}' is not a key of params.yaml")
            sets[key] = value
    return sets


def apply_sets(params: dict, sets: dict[str, Any]) -> dict:
    """`params` (parsed params.yaml, changed in place and returned) with each dotted key of `sets` set,
    as `dvc exp run -S` would: what a profile's values look like written into params.yaml."""
    for key, value in sets.items():
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = value
    return params


def set_arguments(sets: dict[str, Any]) -> list[str]:
    """`dvc exp run` arguments: -S key=value with the value in Hydra's override grammar (DVC parses
    -S with Hydra): strings quoted, lists and maps in brackets and braces, map keys bare."""
    args: list[str] = []
    for key, value in sets.items():
        if isinstance(value, dict) and value:  # an open map (rec.prompt.cf_slots): Hydra will not merge new
            for entry, item in value.items():  # keys into params.yaml's `{}`, so each is added (++: or set)
                args += ["-S", f"++{key}.{entry}={override_value(item)}"]
        else:
            args += ["-S", f"{key}={override_value(value)}"]
    return args


def override_value(value: Any) -> str:
    """`value` as Hydra override text: JSON for scalars and strings, but a map's keys unquoted
    (Hydra rejects `{"collm": ...}`, it reads `{collm: ...}`)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{override_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    return json.dumps(value)


def dvc_yaml_sets(params: dict, sets: dict[str, Any]) -> list[str]:
    """The keys of `sets` under DVC_YAML_KEYS whose value differs from `params`'s (dvc.yaml must be
    written for them before the run)."""
    known = flatten(params)
    return [key for key, value in sets.items()
            if any(key == name or key.startswith(name + ".") for name in DVC_YAML_KEYS) and known.get(key) != value]


def stages_listed(dvc_yaml: Path) -> set[str] | None:
    """The stage names of `dvc_yaml` (None when there is none)."""
    if not dvc_yaml.exists():
        return None
    return set((yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {})


def main() -> None:
    parser = argparse.ArgumentParser(description="Print `dvc exp run -S` arguments for params profiles.")
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    sets = profile_sets(params, args.profiles)
    listed = dvc_yaml_sets(params, sets)
    written = stages_listed(Path("dvc.yaml"))
    wants = sets.get("hard_scores.model", flatten(params).get("hard_scores.model")) is not None
    # whether dvc.yaml lists the hard_scores stage shows which way it was written; the other keys' effect does not show
    unseen = [key for key in listed if not key.startswith(("hard_scores.", "traces.hard_scores"))]
    mismatch = written is None or ("hard_scores" in written) != wants
    if unseen or (mismatch and (listed or written is not None)):
        why = f"these profiles set {', '.join(listed)}" if listed else "dvc.yaml was written for other profiles"
        print(f"pipeline.profiles: {why}, which decide dvc.yaml's stages: first run python -m stages.dvc_yaml "
              f"--write --profiles {' '.join(map(str, args.profiles))}", file=sys.stderr)
    print(shlex.join(set_arguments(sets)))


if __name__ == "__main__":
    main()
