"""`thinkrec recommend` on bad artifacts and bad arguments: a damaged or foreign model file is one
line naming it and the stage that rebuilds it; an argument out of bounds is one line naming the
option (exit 2); -k and --candidates beyond what there is are cut and said so before the scoring;
a non-finite score is an error, never a bare NaN in the JSON."""
from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from recommend_project import write_recommend_project
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.cli.main import main
from pipeline.errors import BadInput

PROJECTOR = "data/rec/collm/projector.pt"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return write_recommend_project(tmp_path_factory.mktemp("recommend_faults"))


def _run(monkeypatch, capsys, root, *args):
    """(exit status, stdout, stderr's lines as the user reads them)."""
    monkeypatch.chdir(root)
    code = main(["recommend", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, said(out.err)


def said(err: str) -> list[str]:
    """stderr's lines as a terminal leaves them (the text after each line's last carriage return),
    without the progress bars this test session shows: the thinkrec script turns them off before
    transformers loads, a test process has loaded it before."""
    shown = (line.rsplit("\r", 1)[-1] for line in err.split("\n"))
    return [line for line in shown if line.strip() and not re.search(r"\d+/\d+ \[[^]]*(it/s|s/it)\]$", line)]


@contextlib.contextmanager
def replaced(path: Path, data: bytes | None):
    """`path` holding `data` (None: deleted) for the block, then as it was (or absent again)."""
    before = path.read_bytes() if path.exists() else None
    try:
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


def _torch_bytes(obj, tmp_path) -> bytes:
    torch.save(obj, tmp_path / "saved.pt")
    return (tmp_path / "saved.pt").read_bytes()


def _damages(root: Path, tmp_path: Path) -> dict[str, tuple[str, bytes]]:
    """name -> (file, content that file cannot be used with)."""
    projector = (root / PROJECTOR).read_bytes()
    adapter = (root / "data/rec/collm/adapter/adapter_model.safetensors").read_bytes()
    return {
        "empty projector": (PROJECTOR, b""),
        "projector cut in half": (PROJECTOR, projector[: len(projector) // 2]),
        "projector of random bytes": (PROJECTOR, np.random.default_rng(0).bytes(4000)),
        "projector that is a foreign pickle": (PROJECTOR, pickle.dumps(argparse.Namespace(state=[1.0]))),
        "projector holding other tensors": (PROJECTOR, _torch_bytes({"weights": torch.zeros(3)}, tmp_path)),
        "adapter cut off": ("data/rec/collm/adapter/adapter_model.safetensors", adapter[:-40]),
        "adapter config not JSON": ("data/rec/collm/adapter/adapter_config.json", b'{"r": 2, "lora_al'),
        "cf checkpoint of random bytes": ("data/cf_selected/model.pt", np.random.default_rng(1).bytes(3000)),
        "cf checkpoint of another kind": ("data/cf_selected/model.pt", _torch_bytes({"state": torch.zeros(2)}, tmp_path)),
    }


STAGES = {"data/rec/collm": "collm", "data/cf_selected": "cf_select"}


@pytest.mark.parametrize("damage", ["empty projector", "projector cut in half", "projector of random bytes",
                                    "projector that is a foreign pickle", "projector holding other tensors",
                                    "adapter cut off", "adapter config not JSON", "cf checkpoint of random bytes",
                                    "cf checkpoint of another kind"])
def test_a_damaged_model_file_is_one_line_naming_it_and_its_stage(project, monkeypatch, capsys, tmp_path, damage):
    path, data = _damages(project, tmp_path)[damage]
    with replaced(project / path, data):
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1")
    assert code == 1 and out == "" and len(err) == 1
    stage = next(s for prefix, s in STAGES.items() if path.startswith(prefix))
    assert err[0].startswith(f"thinkrec recommend: error: {path}: ")
    assert err[0].endswith(f"; run `dvc repro {stage}` to rebuild it")


def test_a_projector_that_model_json_promises_is_required(project, monkeypatch, capsys):
    # before: "prompts carry CF slots but the model has no projector", naming neither file nor stage
    with replaced(project / PROJECTOR, None):
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1")
    assert code == 1 and out == ""
    assert err == [f"thinkrec recommend: error: {PROJECTOR}: missing, though model.json says the model has "
                   "a projector; run `dvc repro collm` to rebuild it"]


def test_a_damaged_expert_adapter_is_named(project, monkeypatch, tmp_path):
    from pipeline.params import load_section
    from pipeline.rec.fused import install_experts
    from pipeline.rec.params import RecParams
    from pipeline.rec.recommender import load_recommender

    monkeypatch.chdir(project)
    params = load_section("rec", RecParams)
    recommender = load_recommender("collm", params)
    adapter = tmp_path / "expert_0/adapter/adapter_model.safetensors"
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}')  # its header's length is not its JSON's
    with pytest.raises(BadInput, match=f"^{re.escape(str(adapter))}: not a readable safetensors file"):
        install_experts(recommender.rec, [tmp_path / "expert_0"], 1)


def test_a_damaged_gate_is_named(tmp_path, monkeypatch):
    from pipeline.rec.gate import Gate, TrainedGate, read_gate

    monkeypatch.chdir(tmp_path)
    gate_dir = Path("data/experts/gate")
    gate_dir.mkdir(parents=True)
    torch.manual_seed(0)
    network = TrainedGate(4, 3, 3)
    gate = Gate("trained", np.eye(2, 4, dtype=np.float32), np.zeros(4, np.float32), np.ones(4, np.float32), 1.0,
                "global", network)
    (gate_dir / "gate.json").write_text(json.dumps(gate.state()))
    torch.save(network.state_dict(), gate_dir / "gate.pt")
    vectors = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert read_gate().weights(vectors, np.ones(5, bool)) == pytest.approx(gate.weights(vectors, np.ones(5, bool)))
    whole = (gate_dir / "gate.pt").read_bytes()
    (gate_dir / "gate.pt").write_bytes(whole[:100])
    with pytest.raises(BadInput, match="^data/experts/gate/gate.pt: not a readable torch checkpoint"):
        read_gate()
    torch.save(TrainedGate(4, 5, 3).state_dict(), gate_dir / "gate.pt")  # another network's shapes
    with pytest.raises(BadInput, match=r"^data/experts/gate: not a gate \(gate.json, and gate.pt"):
        read_gate()
    (gate_dir / "gate.json").write_text("[1, 2]")
    with pytest.raises(BadInput, match="^data/experts/gate/gate.json: holds a JSON list, not an object"):
        read_gate()


@pytest.mark.parametrize("args, message", [
    (["-k", "0"], "argument -k: must be at least 1, got 0"),
    (["--explain", "-1"], "argument --explain: must be at least 0, got -1"),
    (["--candidates", "0"], "argument --candidates: must be at least 1, got 0"),
    (["-k", "two"], "argument -k: expected a whole number, got 'two'"),
    ([], "the following arguments are required: --user"),
])
def test_an_argument_error_is_one_line_naming_the_option(project, monkeypatch, capsys, args, message):
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as exit_:
        main(["recommend", *(["--user", "u1"] if args else []), *args])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"thinkrec recommend: error: {message}\n"


def test_k_beyond_the_candidates_shows_them_all_and_says_so(project, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u2", "-k", "5", "--candidates", "2",
                          "--explain", "0", "--json")
    assert code == 0, err
    assert err == ["thinkrec recommend: note: -k 5 is more than the 2 candidates re-ranked: showing 2"]
    answer = json.loads(out)
    assert answer["candidates"] == 2 and sorted(r["cf_rank"] for r in answer["recommendations"]) == [1, 2]


def test_candidates_beyond_the_unseen_items_are_cut_before_the_scoring(project, monkeypatch, capsys):
    import pipeline.cli.recommend as command
    import pipeline.recommend.ranking as ranking

    events = []
    note, rerank = getattr(command, "note", print), ranking.rerank_queries
    monkeypatch.setattr(command, "note", lambda text: (events.append("note"), note(text)), raising=False)
    monkeypatch.setattr(ranking, "rerank_queries", lambda r, queries, cf_items, k, *a: (
        events.append(min(k, len(queries[0].candidates))), rerank(r, queries, cf_items, k, *a))[1])
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--candidates", "100000", "-k", "100000",
                          "--explain", "0", "--json")
    assert code == 0, err
    items = read_frame(project / "data/ingest/items.parquet", schemas.ITEMS)
    interactions = read_frame(project / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    unseen = len(items) - interactions.loc[interactions["user"] == 1, "item"].nunique()
    assert (len(items), unseen) == (14, 6)
    assert err == [
        "thinkrec recommend: note: --candidates 100,000 is more than the 6 items user u1 has not rated (of 14): "
        "re-ranking those 6",
        "thinkrec recommend: note: -k 100,000 is more than the 6 candidates re-ranked: showing 6"]
    assert events == ["note", "note", 6]  # said before the one re-ranking call, which scored the 6
    answer = json.loads(out)
    assert answer["candidates"] == 6 and len(answer["recommendations"]) == 6


def test_the_text_header_counts_the_candidates_re_ranked(project, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--candidates", "100000", "--explain", "0")
    assert code == 0, err
    assert out.splitlines()[0].startswith("user u1: collm re-ranked the top 6 unseen items of the CF model mf (cf.model: mf) (")
    assert err == [  # params' k (3) fits the 6 candidates
        "thinkrec recommend: note: --candidates 100,000 is more than the 6 items user u1 has not rated (of 14): "
        "re-ranking those 6"]


def test_a_non_finite_score_is_a_named_error_not_json_nan(project, monkeypatch, capsys, tmp_path):
    saved = torch.load(project / PROJECTOR, weights_only=True)
    saved["state"] = {name: torch.full_like(t, float("nan")) if name.startswith("net.") else t
                      for name, t in saved["state"].items()}
    with replaced(project / PROJECTOR, _torch_bytes(saved, tmp_path)):
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--json")
    assert code == 1 and out == "" and len(err) == 1
    assert err[0].startswith("thinkrec recommend: error: the score of 4 of 4 candidates is not finite (nan for item ")
    assert err[0].endswith("the trained model 'collm' or the CF vectors its prompts show hold non-finite values")
