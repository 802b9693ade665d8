"""stages.results_table: README's generated results block and docs/results.md match metrics/, and
the verdict says what hand-made metrics files say (`--write`, `--check`, `verdict`); files from
another ingest are left out, files whose params changed are marked, a model without its detail file
keeps its headline row."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from pipeline import registry
from pipeline.metrics.report import split_report
from pipeline.provenance import stamp
from pipeline.registry import ModelEntry
from registry_swap import run_with_models
from stages.results_table import RESULTS_BEGIN, RESULTS_END, verdict

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ["auc", "uauc", "topn_hr@1", "topn_ndcg@5"]
INGEST = "0123abcd"  # the fixture's ingest fingerprint (it has no data/ingest: the files' common one is current)


# the fixture project's models (run from ROOT, the project's own registry is used)
MODELS = (ModelEntry("cf", "cf", "cf@cf", topn=True), ModelEntry("llm", "llm", "llm", compared_with=("llm_ablated",)),
          ModelEntry("llm_ablated", "llm", "llm_ablated"),
          ModelEntry("student", "rdrec", "student", pointwise=False, topn=True), ModelEntry("absent", "llm", "absent"))


def run(directory: Path, *args: str) -> subprocess.CompletedProcess:
    models = registry.MODELS if directory == ROOT else MODELS
    return run_with_models(directory, "stages.results_table", models, *args)


def metric(value: float, low: float, high: float, name: str) -> dict:
    return {name: value, f"{name}_low": low, f"{name}_high": high}


def report(values: dict[str, tuple[float, float, float]], rows: int = 50, **comparisons: dict) -> dict:
    """A metrics/<model>.json: counts, `values` as metric -> (value, low, high), warm / cold groups
    with the same values, one point value in all_k, and `comparisons` as vs_<name> -> values."""
    group = {"n_rows": rows // 2, "n_users": 5, "topn_users": 4, "all_k": {"hr@3": 0.5}}
    for name, triple in values.items():
        group.update(metric(*triple, name))
    full = {**group, "n_rows": rows, "n_users": 10, "topn_users": 8, "warm": dict(group), "cold": dict(group)}
    for name, comparison in comparisons.items():
        full[f"vs_{name}"] = {key: value for metric_name, triple in comparison.items() if metric_name != "model"
                              for key, value in metric(*triple, metric_name).items()}
        if "model" in comparison:
            full[f"vs_{name}"]["model"] = comparison["model"]
    return full


def fixture_reports() -> dict[str, dict]:
    """cf (the best CF model), llm above it on AUC and below on UAUC, its ablation below it on both;
    student is top-N only, above cf on topn_hr@1 but not separated."""
    cf = report({"auc": (0.70, 0.65, 0.75), "uauc": (0.60, 0.55, 0.65), "topn_hr@1": (0.25, 0.0, 0.5),
                 "topn_ndcg@5": (0.30, 0.1, 0.5)}, best_cf={"model": "cf", "auc": (0, 0, 0)})
    llm = report({"auc": (0.75, 0.70, 0.80), "uauc": (0.55, 0.50, 0.60), "topn_hr@1": (0.125, 0.0, 0.25),
                  "topn_ndcg@5": (0.20, 0.1, 0.3)},
                 best_cf={"model": "cf", "auc": (0.05, 0.01, 0.09), "uauc": (-0.05, -0.09, -0.01),
                          "topn_hr@1": (-0.125, -0.375, 0.125)},
                 llm_ablated={"auc": (0.10, 0.02, 0.18), "uauc": (0.04, -0.03, 0.11)})
    ablated = report({"auc": (0.65, 0.60, 0.70), "uauc": (0.51, 0.45, 0.57)},
                     best_cf={"model": "cf", "auc": (-0.05, -0.10, -0.01), "uauc": (-0.09, -0.15, -0.03)})
    student = report({"topn_hr@1": (0.375, 0.125, 0.625), "topn_ndcg@5": (0.40, 0.2, 0.6)}, rows=0,
                     best_cf={"model": "cf", "topn_hr@1": (0.125, -0.125, 0.375)})
    for name in ("auc", "uauc", "auc_low", "auc_high", "uauc_low", "uauc_high"):
        student.pop(name, None)
    return {"cf": cf, "llm": llm, "llm_ablated": ablated, "student": student}


def test_verdict_names_the_best_llm_row_the_main_ablation_and_the_topn_leader():
    reports = fixture_reports()
    ablations = {"llm": ["llm_ablated"], "student": ["llm"]}
    lines = verdict(reports, ["llm", "llm_ablated", "student"], ablations, HEADLINE)
    assert lines == [
        "- **Best LLM row on AUC vs the best CF model**: llm - cf: AUC +0.050 [+0.010, +0.090] (above), "
        "UAUC -0.050 [-0.090, -0.010] (below); LLM rows above cf on AUC: 1 of 2.",
        "- **Main ablation, llm minus each**: llm_ablated: AUC +0.100 [+0.020, +0.180] (above), "
        "UAUC +0.040 [-0.030, +0.110] (not separated).",
        "- **Top-N, topn_hr@1 on 8 users**: best LLM row student 0.375 [0.125, 0.625], cf 0.250 [0.000, 0.500]; "
        "difference topn_hr@1 +0.125 [-0.125, +0.375] (not separated).",
    ]


def test_verdict_when_no_llm_row_reaches_the_cf_model():
    reports = fixture_reports()
    del reports["llm"], reports["student"]
    lines = verdict(reports, ["llm_ablated"], {"llm_ablated": []}, HEADLINE)
    assert lines[0] == ("- **Best LLM row on AUC vs the best CF model**: llm_ablated - cf: AUC -0.050 [-0.100, -0.010] "
                        "(below), UAUC -0.090 [-0.150, -0.030] (below); LLM rows above cf on AUC: 0 of 1.")
    assert len(lines) == 1  # no ablation pair, no top-N metric in any comparison


def write_evaluation(directory: Path, model: str, report: dict, params: dict, ingest: str = INGEST) -> None:
    """metrics/<model>.json and metrics/detail/<model>.json as evaluate writes them, stamped."""
    top, detail = split_report(report, HEADLINE)
    (directory / "metrics/detail").mkdir(parents=True, exist_ok=True)
    (directory / f"metrics/{model}.json").write_text(json.dumps({**top, **stamp(ingest, ["evaluate"], params, True)}))
    (directory / f"metrics/detail/{model}.json").write_text(json.dumps({**detail, **stamp(ingest, ["evaluate"], params)}))


def write_fixture_project(directory: Path) -> dict:
    """The fixture project; returns its params."""
    evaluate = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]
    evaluate.update(headline=HEADLINE)
    params = {"evaluate": evaluate}
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (directory / "metrics").mkdir()
    for model, data in fixture_reports().items():
        write_evaluation(directory, model, data, params)
    for model in ("llm", "llm_ablated", "student"):  # written by the LLM training stages
        (directory / f"metrics/{model}_train.json").write_text("{}")
    (directory / "docs").mkdir()
    (directory / "README.md").write_text(f"# title\n\nhand-written\n\n{RESULTS_BEGIN}\nold\n{RESULTS_END}\n\nafter\n")
    return params


def test_write_fills_the_block_and_the_page_and_check_fails_once_a_metric_changes(tmp_path):
    write_fixture_project(tmp_path)
    assert run(tmp_path, "--check").returncode == 1
    result = run(tmp_path, "--write")
    assert result.returncode == 0, result.stderr
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# title\n\nhand-written\n\n" + RESULTS_BEGIN) and readme.endswith(RESULTS_END + "\n\nafter\n")
    assert "old" not in readme
    assert "| model | rows | users | auc | uauc | topn_hr@1 | topn_ndcg@5 |" in readme
    assert "| student | 0 | 10 | — | — | 0.375 [0.125, 0.625] | 0.400 [0.200, 0.600] |" in readme
    assert "absent" not in readme  # a registry model without metrics is left out
    assert "llm - cf: AUC +0.050 [+0.010, +0.090] (above)" in readme
    page = (tmp_path / "docs/results.md").read_text()
    assert "| llm (cold) | 5 | 25 | 4 | 0.750 [0.700, 0.800] |" in page
    assert "| llm | llm_ablated | +0.100 [+0.020, +0.180] | +0.040 [-0.030, +0.110] | — | — |" in page
    assert "| model | hr@3 |" in page and "| llm (warm) | 0.500 |" in page
    assert run(tmp_path, "--check").returncode == 0

    metrics = json.loads((tmp_path / "metrics/llm.json").read_text())
    metrics["auc"] = 0.76
    (tmp_path / "metrics/llm.json").write_text(json.dumps(metrics))
    result = run(tmp_path, "--check")
    assert result.returncode == 1 and "README.md, docs/results.md" in result.stderr


def test_a_model_from_another_ingest_is_left_out_and_named(tmp_path):
    params = write_fixture_project(tmp_path)
    write_evaluation(tmp_path, "llm_ablated", fixture_reports()["llm_ablated"], params, ingest="ffff0000")
    result = run(tmp_path, "--write")
    assert result.returncode == 0, result.stderr
    readme = (tmp_path / "README.md").read_text()
    assert "| llm_ablated |" not in readme and "| llm |" in readme
    assert "Rows computed from ingest `0123abcd`" in readme
    assert "Left out, not this dataset's results (metrics/<model>.json): llm_ablated: from another ingest " \
           "(ffff0000; data/ingest is now 0123abcd)." in readme
    assert "left out metrics/<model>.json of llm_ablated" in result.stderr


def test_when_no_model_comes_from_data_ingest_it_refuses_in_one_line(tmp_path):
    write_fixture_project(tmp_path)
    (tmp_path / "data/ingest").mkdir(parents=True)
    (tmp_path / "data/ingest/interactions.parquet").write_bytes(b"another dataset")
    result = run(tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("no metrics/<model>.json comes from data/ingest now (ingest ")
    assert "cf, llm, llm_ablated, student: from another ingest (0123abcd; data/ingest is now " in line
    assert line.endswith("run `dvc repro evaluate`")


def test_params_changed_since_marks_the_rows(tmp_path):
    params = write_fixture_project(tmp_path)
    changed = {"evaluate": {**params["evaluate"], "bootstrap": {"resamples": 10, "seed": 1}}}
    write_evaluation(tmp_path, "llm", fixture_reports()["llm"], changed)  # one model's files from other params
    assert run(tmp_path, "--write").returncode == 0
    readme = (tmp_path / "README.md").read_text()
    assert "| llm † | 50 | 10 |" in readme and "| cf | 50 | 10 |" in readme
    assert "†: params changed since: evaluate" in readme
    page = (tmp_path / "docs/results.md").read_text()
    assert "| llm † (warm) |" in page and "| llm † | llm_ablated |" in page
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))  # now every other model's params differ
    write_evaluation(tmp_path, "llm", fixture_reports()["llm"], params)
    assert run(tmp_path, "--write").returncode == 0
    readme = (tmp_path / "README.md").read_text()
    assert "†" not in readme and "Every row: params changed since: evaluate" in readme


def test_a_model_without_its_detail_file_keeps_its_headline_row(tmp_path):
    write_fixture_project(tmp_path)
    (tmp_path / "metrics/detail/llm.json").unlink()
    result = run(tmp_path, "--write")
    assert result.returncode == 0, result.stderr
    readme = (tmp_path / "README.md").read_text()
    assert "| llm | 50 | 10 | 0.750 [0.700, 0.800] |" in readme
    assert "llm: absent; `dvc repro evaluate` writes them." in readme
    assert "llm - cf" not in readme  # the verdict reads the comparisons of the detail file
    page = (tmp_path / "docs/results.md").read_text()
    assert "| llm (warm) |" not in page and "| llm_ablated (warm) |" in page


def test_readme_block_and_results_page_match_the_committed_metrics():
    """Every number of README's results block and of docs/results.md is generated from metrics/."""
    result = run(ROOT, "--check")
    assert result.returncode == 0, result.stderr


def test_the_legend_says_when_ranking_metrics_follow_the_reference_conventions():
    from pipeline.params import load_section
    from stages.evaluate import EvaluateParams

    params = load_section("evaluate", EvaluateParams, ROOT / "params.yaml")
    reports = fixture_reports()
    from stages import results_table

    assert "conventions" not in results_table.legend(reports, params)
    reports = {name: {**report, "conventions": "reference"} for name, report in reports.items()}
    assert "under the `reference` conventions" in results_table.legend(reports, params)


def test_the_other_cutoffs_table_orders_every_protocol_and_takes_metrics_without_a_cutoff():
    from stages.results_table import other_cutoffs_table

    values = {"full_retrieved": 0.5, "full_hr@20": 0.3, "full_hr@5": 0.1, "ndcg@3": 0.2, "topn_hr@2": 0.4,
              "next_hr@5": 0.1}
    table = other_cutoffs_table({"m": {"all_k": values, "warm": {"all_k": {}}, "cold": {"all_k": {}}}})
    assert table.splitlines()[0] == "| model | ndcg@3 | topn_hr@2 | full_hr@5 | full_hr@20 | full_retrieved | next_hr@5 |"
