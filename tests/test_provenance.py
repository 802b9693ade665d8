"""Results that know their dataset (pipeline/provenance.py): the ingest fingerprint, the stamp's
params check, files written all or none, and the consumers that refuse or mark what comes from
another ingest: `thinkrec recommend` and `thinkrec report` (stages.results_table:
tests/test_results_table.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.artifacts import write_json, write_json_files
from pipeline.cli.main import main
from pipeline.provenance import ingest_fingerprint, origin, params_hash, stamp
from pipeline.report.collect import collect
from recommend_project import stamp_as_the_stage, write_recommend_project
from report_fixture import PARAMS, write_report_project
from synthetic_ingest import write_synthetic_ingest


def test_the_fingerprint_follows_the_ingest_outputs_bytes_not_the_card(tmp_path):
    write_synthetic_ingest(tmp_path)
    ingest = tmp_path / "data/ingest"
    first = ingest_fingerprint(ingest)
    assert len(first) == 8 and int(first, 16) >= 0
    (ingest / "card.json").write_text('{"fingerprint": "anything"}')
    assert ingest_fingerprint(ingest) == first  # the card records the fingerprint, it is not part of it
    data = bytearray((ingest / "items.parquet").read_bytes())
    data[-20] ^= 1
    (ingest / "items.parquet").write_bytes(bytes(data))
    assert ingest_fingerprint(ingest) != first
    for path in ingest.glob("*.parquet"):
        path.unlink()
    assert ingest_fingerprint(ingest) is None


def test_origin_tells_another_ingest_no_stamp_and_which_params_changed():
    params = {"rec": {"lora": {"r": 8}, "loss": "bce"}, "evaluate": {"seed": 1}}
    keys = ["rec.lora", "rec.loss"]
    data = {"rows": 3, **stamp("aaaa0000", keys, params)}
    assert origin(data, "aaaa0000", params).note == ""
    assert origin(data, None, params).current  # no data/ingest to check against
    assert origin(data, "bbbb1111", params).why == "from another ingest (aaaa0000; data/ingest is now bbbb1111)"
    assert not origin({"rows": 3}, "aaaa0000", params).current
    assert origin({"rows": 3}, "aaaa0000", params).why.startswith("unknown origin")
    changed = {**params, "rec": {**params["rec"], "loss": "focal"}}
    assert origin(data, "aaaa0000", changed).note == "params changed since: rec.loss"
    metric = {"auc": 0.7, **stamp("aaaa0000", keys, params, dvc_metric=True)}  # the hash only: which key is not known
    assert "params_values" not in metric
    assert origin(metric, "aaaa0000", changed).note == "params changed since: rec.lora, rec.loss"
    assert origin(data, "aaaa0000", {**params, "evaluate": {"seed": 2}}).note == ""  # not the stage's keys
    assert params_hash(["a.b"], {"a": {"b": None}}) != params_hash(["a.b"], {"a": {}})  # null is not absent
    assert origin({"ingest": "aaaa0000", "params": None, "params_keys": None}, "aaaa0000", params).note == \
        "params not recorded"


def test_files_written_together_are_all_or_none(tmp_path):
    write_json({"v": 1}, tmp_path / "a.json")
    write_json({"v": 1}, tmp_path / "b.json")
    with pytest.raises(TypeError):  # the last file cannot be written: neither changes
        write_json_files({tmp_path / "a.json": {"v": 2}, tmp_path / "b.json": {"v": object()}})
    assert [json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json")] == [{"v": 1}, {"v": 1}]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temporary left
    write_json_files({tmp_path / "a.json": {"v": 2}, tmp_path / "b.json": {"v": 2}})
    assert [json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json")] == [{"v": 2}, {"v": 2}]


@pytest.fixture()
def recommend_project(tmp_path, monkeypatch) -> Path:
    root = write_recommend_project(tmp_path)
    monkeypatch.chdir(root)
    return root


# the CF log in data/cf_selected is cf@mf's, copied by cf_select: `dvc repro cf_select` reruns both
@pytest.mark.parametrize("relative, stage, rebuilds", [("metrics/collm_train.json", "collm", "collm"),
                                                       ("data/cf_selected/train_log.json", "cf@mf", "cf_select")])
def test_recommend_refuses_a_model_or_cf_files_from_another_ingest(recommend_project, capsys, relative, stage, rebuilds):
    stamp_as_the_stage(recommend_project, relative, stage, ingest="ffff0000")
    assert main(["recommend", "--user", "u1"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"thinkrec recommend: error: {relative} from another ingest (ffff0000; ")
    assert error.rstrip().endswith(f"the trained model is not this dataset's; run `dvc repro {rebuilds}`")


def test_recommend_refuses_a_model_of_unknown_origin(recommend_project, capsys):
    (recommend_project / "metrics/collm_train.json").write_text(json.dumps({"train_rows": 20}))  # before stamps
    assert main(["recommend", "--user", "u1"]) == 1
    assert "metrics/collm_train.json unknown origin (no ingest fingerprint" in capsys.readouterr().err


def test_report_leaves_out_another_ingests_evaluation_and_marks_changed_params(tmp_path):
    root = write_report_project(tmp_path)
    collm = json.loads((root / "metrics/collm.json").read_text())
    (root / "metrics/collm.json").write_text(json.dumps({**collm, "params": "00000000"}))  # older params
    for name in ("mf.json", "detail/mf.json"):
        data = json.loads((root / "metrics" / name).read_text())
        (root / "metrics" / name).write_text(json.dumps({**data, "ingest": "ffff0000"}))
    inputs = collect(root, ["mf", "collm", "rdrec"], PARAMS["evaluate"]["subset"], PARAMS["evaluate"]["headline"],
                     experiments=False)
    assert list(inputs.models) == ["collm", "rdrec"] and "mf" not in inputs.roc
    assert any(line.startswith("metrics/mf.json (from another ingest (ffff0000; ") for line in inputs.skipped)
    assert inputs.marks == {"collm": "params changed since: evaluate"}
    # collm's detail file is of the run before: not joined, and said
    assert "vs_best_cf" not in inputs.models["collm"] and "vs_best_cf" in inputs.models["rdrec"]
    assert "metrics/detail/collm.json (from another run than its headline file): collm's warm / cold users and " \
           "paired differences" in inputs.skipped


def test_recommend_runs_with_params_changed_since_and_says_which(recommend_project, capsys):
    params = yaml.safe_load((recommend_project / "params.yaml").read_text())
    params["rec"]["loss"]["bce_weight_single"] = params["rec"]["loss"]["bce_weight_single"] / 2  # after training
    (recommend_project / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["recommend", "--user", "u1"]) == 0
    err = capsys.readouterr().err
    assert "thinkrec recommend: note: metrics/collm_train.json: params changed since: rec.loss " \
           "(`dvc repro collm` retrains with params.yaml now)" in err
    assert "train_log.json" not in err  # the CF model's params (cf.train, cf.mf) did not change
