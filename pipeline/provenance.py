"""Where a result comes from: the ingest it was computed from and the params of the stage that
computed it, stamped into every metrics file so that a file from another dataset or from older
params is refused or marked instead of being shown as current.

The ingest fingerprint is the first 8 hex digits of a sha256 over the ingest outputs
(data/ingest/{interactions,items,users,subsets,topn_candidates}.parquet: each file's name and bytes,
in that order; card.json is not part of it, it records the fingerprint). The ingest stage writes
byte-identical files for identical inputs, so a rerun on the same data keeps the fingerprint and any
other dataset (or any change to ingest's params that changes its outputs) changes it.

A stamp is flat keys merged into the file's top level:
  ingest         the fingerprint of data/ingest the file was computed from
  params         8 hex digits of a sha256 over the values of `params_keys` (dotted params.yaml keys)
  params_keys    the params keys the stage declares (a list), so a reader can hash params.yaml now
  params_values  those keys' values, only in files that are not DVC metrics (`dvc metrics show`
                 prints every string and number of a metrics file: the values would be columns)
`params` and `params_keys` are null where the stage's declared keys are not known (a stage run
outside the DVC project, with no dvc.yaml declaring it): such a file's params are "not recorded".
This module knows nothing of DVC: the caller passes the keys.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline import layout
from pipeline.errors import MissingInput

FINGERPRINTED = (layout.INTERACTIONS, layout.ITEMS, layout.USERS, layout.SUBSETS, layout.TOPN_CANDIDATES)
DIGITS = 8  # hex digits kept of each sha256: short enough for a `dvc metrics show` column
_ABSENT = object()


def ingest_fingerprint(ingest_dir: str | Path = layout.INGEST) -> str | None:
    """The fingerprint of the ingest outputs in `ingest_dir` (see the module docstring); None when
    the directory holds none of them. A file absent among others (a test's partial ingest) is hashed
    as absent, so the fingerprint still tells those files apart from a full ingest."""
    ingest_dir = Path(ingest_dir)
    digest = hashlib.sha256()
    found = False
    for name in (path.name for path in FINGERPRINTED):
        path = ingest_dir / name
        digest.update(name.encode() + b"\0")
        if not path.is_file():
            digest.update(b"absent\0")
            continue
        found = True
        file_digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                file_digest.update(block)
        digest.update(file_digest.digest())
    return digest.hexdigest()[:DIGITS] if found else None


def require_ingest_fingerprint(ingest_dir: str | Path = layout.INGEST) -> str:
    """ingest_fingerprint, or MissingInput naming `ingest_dir` when it holds no ingest output."""
    fingerprint = ingest_fingerprint(ingest_dir)
    if fingerprint is None:
        names = ", ".join(path.name for path in FINGERPRINTED)
        raise MissingInput(f"{ingest_dir}: none of {names} (run `dvc repro ingest` first)")
    return fingerprint


def param_value(params: dict, key: str):
    """params.yaml's value at the dotted `key`, or _ABSENT."""
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def param_values(keys: list[str], params: dict) -> dict:
    """key -> value of each of `keys` params.yaml has (an absent key is left out)."""
    values = {key: param_value(params, key) for key in keys}
    return {key: value for key, value in values.items() if value is not _ABSENT}


def params_hash(keys: list[str], params: dict) -> str:
    """The hash of `keys`' values in `params`: equal exactly when every value is equal (an absent
    key differs from a null one)."""
    text = json.dumps(param_values(keys, params), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGITS]


def stamp(ingest: str, keys: list[str] | None, params: dict, dvc_metric: bool = False) -> dict:
    """The keys to merge into a metrics file (see the module docstring); `keys` None: not known."""
    out = {"ingest": ingest, "params": None if keys is None else params_hash(keys, params),
           "params_keys": None if keys is None else list(keys)}
    if not dvc_metric:
        out["params_values"] = None if keys is None else param_values(keys, params)
    return out


STAMP_KEYS = ("ingest", "params", "params_keys", "params_values")


def without_stamp(data: dict) -> dict:
    return {key: value for key, value in data.items() if key not in STAMP_KEYS}


@dataclass(frozen=True)
class Origin:
    """What a stamped file says of where it comes from, against data/ingest and params.yaml now.
    `current`: from this ingest (or none to check against). `why`: why it is not (another ingest,
    no stamp), "" when it is. `params_changed`: the file's params keys whose values differ now
    (["<its params>"] when the file records only their hash), [] when none do or none are recorded.
    `params_recorded`: False for a file stamped without its params keys."""
    ingest: str | None
    current: bool
    why: str
    params_changed: list[str]
    params_recorded: bool

    @property
    def note(self) -> str:
        """One phrase for a table or a warning: "" for a current file with unchanged params."""
        if not self.current:
            return self.why
        if not self.params_recorded:
            return "params not recorded"
        if self.params_changed:
            return f"params changed since: {', '.join(self.params_changed)}"
        return ""


def origin(data: dict, ingest_now: str | None, params_now: dict) -> Origin:
    """Where `data` (a metrics file's JSON object) comes from, against the fingerprint of data/ingest
    now (`ingest_now`; None: not known, so not checked) and params.yaml now (`params_now`)."""
    ingest = data.get("ingest") if isinstance(data, dict) else None
    if not isinstance(ingest, str):
        return Origin(None, False, "unknown origin (no ingest fingerprint: written before fingerprints)", [], False)
    if ingest_now is not None and ingest != ingest_now:
        return Origin(ingest, False, f"from another ingest ({ingest}; data/ingest is now {ingest_now})", [], True)
    keys, recorded = data.get("params_keys"), data.get("params")
    if not isinstance(keys, list) or not isinstance(recorded, str):
        return Origin(ingest, True, "", [], False)
    if params_hash(keys, params_now) == recorded:
        return Origin(ingest, True, "", [], True)
    values = data.get("params_values")
    if isinstance(values, dict):
        changed = [key for key in keys if param_value(params_now, key) != values.get(key, _ABSENT)]
    else:
        changed = []
    return Origin(ingest, True, "", changed or [", ".join(keys)], True)
