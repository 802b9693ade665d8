"""evaluate's files read back: each model's headline file (metrics/<model>.json) joined with its
detail file (metrics/detail/<model>.json) into the one report the results tables and the HTML
report show, with where each comes from checked (pipeline/provenance.py).

A model whose headline file is from another ingest, or has no fingerprint (unknown origin), is left
out with the reason: its numbers are another dataset's. A model whose params changed since is kept
and marked. A detail file that is absent (a checkout that lacks it) or from another run than its
headline file (another ingest or params) is not joined: the model then has its headline metrics,
intervals and counts only. Nothing here raises on a bad file: it is left out, and why is said."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import layout
from pipeline.metrics.report import join_report
from pipeline.provenance import ingest_fingerprint, origin


@dataclass
class StoredEvaluations:
    reports: dict[str, dict] = field(default_factory=dict)  # model -> joined report, in the order asked
    left_out: dict[str, str] = field(default_factory=dict)  # model -> why its metrics/<model>.json is not shown
    marks: dict[str, str] = field(default_factory=dict)  # model -> what is off about a shown one
    without_detail: dict[str, str] = field(default_factory=dict)  # model -> why metrics/detail/<model>.json is not joined
    ingest: str | None = None  # the fingerprint the shown models come from
    ingest_checked: bool = True  # False: no data/ingest to check against (the files' most common one)


def grouped(reasons: dict[str, str]) -> str:
    """model -> reason as "a, b: reason; c: other reason" (models of one reason together)."""
    models: dict[str, list[str]] = {}
    for model, reason in reasons.items():
        models.setdefault(reason, []).append(model)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in models.items())


def _read(path: Path) -> tuple[dict | None, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return None, f"unreadable ({err})"
    return (data, "") if isinstance(data, dict) else (None, f"holds a JSON {type(data).__name__}, not an object")


def read_evaluations(root: Path, models: list[str], params_now: dict) -> StoredEvaluations:
    """The evaluations of `models` under the project directory `root`, checked against the
    fingerprint of root/data/ingest and `params_now` (params.yaml as loaded). Without data/ingest
    (a fresh clone before `dvc pull`), the fingerprint most headline files carry is taken as
    current (`ingest_checked` False)."""
    root = Path(root)
    stored = StoredEvaluations()
    tops = {}
    for model in models:
        path = root / layout.metrics(model)
        if not path.exists():
            continue
        data, why = _read(path)
        if data is None:
            stored.left_out[model] = why
        else:
            tops[model] = data
    stored.ingest = ingest_fingerprint(root / layout.INGEST)
    if stored.ingest is None:
        stored.ingest_checked = False
        counts = Counter(top["ingest"] for top in tops.values() if isinstance(top.get("ingest"), str))
        stored.ingest = max(counts, key=lambda fingerprint: counts[fingerprint], default=None)
    for model, top in tops.items():
        found = origin(top, stored.ingest, params_now)
        if not found.current:
            stored.left_out[model] = found.why
            continue
        if found.note:
            stored.marks[model] = found.note
        detail_path = root / layout.metrics_detail(model)
        detail, why = _read(detail_path) if detail_path.exists() else (None, "absent")
        if detail is not None and (detail.get("ingest"), detail.get("params")) != (top.get("ingest"), top.get("params")):
            detail, why = None, "from another run than its headline file"
        if detail is None:
            stored.without_detail[model] = why
        stored.reports[model] = join_report(top, detail)
    return stored
