"""One-off: rewrite metrics/ written before provenance stamps (pipeline/provenance.py) into today's
layout, numbers unchanged.

Usage: python scripts/migrate_metrics_layout.py [--check]
- metrics/<model>.json of every evaluated model, when still one file with warm/cold/all_k/vs_*
  inside, is split into the headline file and metrics/detail/<model>.json
  (pipeline/metrics/report.py: split_report, with the headline the run used);
- every metrics file gets the stamp of the run that wrote it: `ingest` is the fingerprint of
  data/ingest as it is now (run this only where data/ingest holds that run's ingest, e.g. after
  `dvc pull` at the commit whose dvc.lock records the run), `params` the hash of the params dvc.lock
  records for the stage that wrote the file (so params.yaml changed since then shows as such).
A file that already has a stamp is left alone; `--check` writes nothing and exits 1 when a file
would change. Reads dvc.lock, never writes it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import layout, registry  # noqa: E402
from pipeline.artifacts import write_json_files  # noqa: E402
from pipeline.metrics.report import split_report  # noqa: E402
from pipeline.provenance import require_ingest_fingerprint, stamp  # noqa: E402

DVC_LOCK = Path("dvc.lock")


def locked_params(lock: dict, stage: str) -> tuple[list[str], dict]:
    """(keys, params tree) of the params.yaml values dvc.lock records for `stage`."""
    recorded = ((lock["stages"].get(stage) or {}).get("params") or {}).get("params.yaml") or {}
    if not recorded:
        raise SystemExit(f"{DVC_LOCK}: no params recorded for stage '{stage}'")
    tree: dict = {}
    for key, value in recorded.items():
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return list(recorded), tree


def summary_stages() -> dict[Path, str]:
    """Every metrics file that is not an evaluation -> the dvc.yaml stage that wrote it."""
    stages = {layout.metrics(name): stage for name, stage in
              [("keywords", "keywords"), ("traces", "traces"), ("rationales", "rationales"),
               ("explanations", "explain"), ("clusters", "clusters"), ("gate", "gate")]}
    stages[layout.scoring_metrics("thinkrec_experts")] = "thinkrec_experts"
    for entry in registry.models():
        if entry.family in ("llm", "rdrec"):
            stages[layout.train_metrics(entry.name)] = entry.stage
    for path in sorted((layout.METRICS_DIR / "experts").glob("expert_*.json")):
        stages[path] = f"expert@{path.stem.removeprefix('expert_')}"
    return stages


def migrated(lock: dict, ingest: str) -> dict[Path, dict]:
    """path -> its new content, for every file that changes."""
    files = {}
    keys, params = locked_params(lock, "evaluate")
    headline = params["evaluate"]["headline"]
    for model in registry.evaluated():
        path = layout.metrics(model)
        if not path.exists():
            continue
        report = json.loads(path.read_text())
        if "ingest" in report:
            continue
        top, detail = split_report(report, headline)
        files[path] = {**top, **stamp(ingest, keys, params, dvc_metric=True)}
        files[layout.metrics_detail(model)] = {**detail, **stamp(ingest, keys, params)}
    for path, stage in summary_stages().items():
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        if "ingest" in data:
            continue
        keys, params = locked_params(lock, stage)
        files[path] = {**data, **stamp(ingest, keys, params)}
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    ingest = require_ingest_fingerprint(layout.INGEST)
    files = migrated(yaml.safe_load(DVC_LOCK.read_text()), ingest)
    if args.check:
        print("\n".join(f"would rewrite {path}" for path in files) or "nothing to migrate")
        return 1 if files else 0
    write_json_files(files)
    print(f"ingest {ingest}: rewrote {len(files)} files" + "".join(f"\n  {path}" for path in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
