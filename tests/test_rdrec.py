"""RDRec's student (pipeline/rdrec, stages/rdrec.py) on tiny artifacts, and RDRec's data protocol
(profiles/rdrec-amazon2014.yaml) end to end on small Amazon 2014 5-core files written here:
ingest -> cf -> rationales (scripted teacher) -> both student stages -> evaluate."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from params_base import section
from rec_tiny import tiny_params, write_tiny_artifacts, write_tiny_model
from scripted_backend import ScriptedBackend

import stages.rdrec
import stages.teacher
from pipeline import registry, schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.metrics.report import join_report
from pipeline.profiles import overlay
from pipeline.rdrec.tasks import rank_rows

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles/rdrec-amazon2014.yaml"


def student_params() -> dict:
    return {
        "variants": {"rdrec": {"rank": 0.5, "next": 0.25, "preference": 0.25, "attributes": 0.25},
                     "rdrec_no_rationales": {"rank": 0.5, "next": 0.25}},
        "prompt": {"history_items": 2, "title_words": 3, "max_rationale_tokens": 6},
        "train": {"batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "warmup_steps": 1,
                  "rank_positives": 8, "negatives": 1, "rank_bce_weight": 0.9, "use_fallback_rationales": False,
                  "dtype": "float32", "seed": 3},
        "scoring": {"topn_batch_size": 3, "ranking_batch_size": 4},
    }


def write_rationales(root: Path) -> pd.DataFrame:
    interactions = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    train = interactions[interactions["split"] == "train"].head(6)
    table = pd.DataFrame({
        "row": train["row"], "user_preference": "The user likes calm drama stories.",
        "item_attributes": "A long story about a quiet town and its people.",
        "source": ["llm"] * 5 + ["fallback"], "input_kind": "metadata",
    })
    write_frame(table, root / "data/rationales/rationales.parquet", schemas.RATIONALES)
    return table


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "llm")


@pytest.fixture()
def tiny_project(tmp_path, monkeypatch, tiny_model):
    write_tiny_artifacts(tmp_path)
    write_rationales(tmp_path)
    params = tiny_params(tiny_model)
    params["rdrec"] = student_params()
    params["ranking"] = section("ranking")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_rank_rows_pair_each_liked_row_with_never_interacted_items():
    rows = [(r, r % 3, r % 5, int(r % 2 == 0), [], [], "train") for r in range(30)]
    train = pd.DataFrame(rows, columns=["row", "user", "item", "label", "history_items", "history_labels", "split"])
    ranked = rank_rows(train, np.arange(8), positives=4, negatives=2, seed=0)
    assert len(ranked) == 12 and ranked["label"].tolist() == [1, 0, 0] * 4
    seen = train.groupby("user")["item"].agg(set)
    for row in ranked[ranked["label"] == 0].itertuples():
        assert row.item not in seen[row.user]  # user u rated items u, u+3, ... mod 5: never 5, 6, 7 and others
    positives = ranked[ranked["label"] == 1]
    assert positives["row"].isin(train.loc[train["label"] == 1, "row"]).all() and positives["row"].is_monotonic_increasing


def test_student_stages_train_their_tasks_and_score_every_topn_candidate(tiny_project):
    root = tiny_project
    full = stages.rdrec.main("rdrec")
    ablated = stages.rdrec.main("rdrec_no_rationales")
    candidates = read_frame(root / "data/ingest/topn_candidates.parquet", schemas.TOPN_CANDIDATES)
    for name, metrics in (("rdrec", full), ("rdrec_no_rationales", ablated)):
        predictions = read_frame(root / f"data/predictions/{name}.parquet", schemas.PREDICTIONS)
        assert (predictions["row"] == -1).all() and len(predictions) == len(candidates) == metrics["topn_candidates"]
        assert predictions[["user", "item"]].to_numpy().tolist() == candidates[["user", "item"]].to_numpy().tolist()
        assert np.isfinite(predictions["score"]).all() and predictions["score"].nunique() > 1
        assert (root / f"data/rdrec/{name}/adapter/adapter_config.json").exists()
        assert (root / f"data/rdrec/{name}/projector.pt").exists()
        saved = json.loads((root / f"metrics/{name}_train.json").read_text())
        assert saved["steps"] == sum(t["batches"] for t in saved["tasks"].values())
        assert saved["train_tokens"] == sum(t["tokens"] for t in saved["tasks"].values()) > 0
        # 8 liked rows, each one pack of the positive and its negative; one pass in batches of 4 packs
        assert saved["rank_rows"] == 8 and saved["rank_answers"] == 16 and saved["tasks"]["rank"]["batches"] == 2
    # next: the 8 liked rows again, 2 rank batches x 0.25 / 0.5 = 1 batch of 4
    assert ablated["pool_packs"] == {"next": 8, "rank": 8} and ablated["steps"] == 3
    assert set(ablated["tasks"]) == {"next", "rank"} and ablated["tasks"]["next"]["batches"] == 1
    # 5 teacher rationales (the fallback one is not learned): one preference + one attributes row each
    assert full["pool_packs"] == {"attributes": 5, "next": 8, "preference": 5, "rank": 8}
    assert full["pool_answers"] == {"attributes": 5, "next": 8, "preference": 5, "rank": 16}
    assert full["task_weights"] == {"attributes": 0.2, "next": 0.2, "preference": 0.2, "rank": 0.4}
    assert full["task_shares"] == {"attributes": 0.2, "next": 0.2, "preference": 0.2, "rank": 0.4}  # of 5 steps
    assert ablated["task_shares"] == {"next": 0.3333, "rank": 0.6667}  # weights 0.25 / 0.5: 1 of 3 steps
    # the rationale tasks add their batches: 2 rank + 1 next + 1 preference + 1 attributes
    assert full["steps"] == 5 and full["tasks"]["rank"] == ablated["tasks"]["rank"]
    assert full["tasks"]["next"] == ablated["tasks"]["next"] == {"batches": 1, "answers": 4,
                                                                "tokens": full["tasks"]["next"]["tokens"]}
    log = json.loads((root / "data/rdrec/rdrec/train_log.json").read_text())
    assert [sorted(s["kinds"]) for s in log["steps"]].count(["rank"]) == 2 and log["rationales_cut"] == 10
    first = (root / "data/predictions/rdrec.parquet").read_bytes()
    stages.rdrec.main("rdrec")  # same inputs, same seeds: same bytes
    assert (root / "data/predictions/rdrec.parquet").read_bytes() == first
    assert first != (root / "data/predictions/rdrec_no_rationales.parquet").read_bytes()


def test_a_rationale_task_without_rationales_is_an_error(tiny_project):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["rdrec"]["train"]["use_fallback_rationales"] = False
    write_frame(read_frame("data/rationales/rationales.parquet", schemas.RATIONALES).assign(source="fallback"),
                "data/rationales/rationales.parquet", schemas.RATIONALES)
    with pytest.raises(ValueError, match=r"tasks \['attributes', 'preference'\] have a weight but no training rows"):
        stages.rdrec.main("rdrec")
    with pytest.raises(KeyError, match="no variant 'nope'"):
        stages.rdrec.main("nope")


# --- RDRec's data protocol on Amazon 2014 5-core files -------------------------------------------

def flat(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_docs_exp_run_line_sets_exactly_the_profile():
    text = (ROOT / "docs/rdrec.md").read_text()
    flags = dict(match.split("=", 1) for match in re.findall(r"-S '?([\w.]+=[^\s'\\]+)'?", text))
    expected = {key: yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
                for key, value in flat(yaml.safe_load(PROFILE.read_text())).items()}
    assert {k: yaml.safe_load(v) for k, v in flags.items()} == {k: yaml.safe_load(v) for k, v in expected.items()}


def write_amazon_2014(raw: Path, users: int = 12, items: int = 9) -> None:
    """reviews_Beauty_5.json.gz (one JSON object a line) and meta_Beauty.json.gz (Python literals,
    as the 2014 metadata ships): every user reviews 6 or 7 items, every item gets >= 5 reviews;
    plus one user with 2 reviews and one item with 1 review, which the 5-core filter removes."""
    raw.mkdir(parents=True)
    day, lines = 86400, []
    for u in range(users):
        for k in range(6 + u % 2):
            i = (u + 2 * k) % items
            lines.append({"reviewerID": f"A{u:03d}", "asin": f"B{i:03d}", "reviewerName": f"R {u}", "helpful": [0, 0],
                          "reviewText": f"Item {i} is {'great' if (u + i) % 3 else 'bad'} for my skin, user {u}.",
                          "overall": float(5 if (u + i) % 3 else 2), "summary": "ok",
                          "unixReviewTime": 1388534400 + (u * 7 + k) * day, "reviewTime": "01 1, 2014"})
    lines += [{"reviewerID": "ASHORT", "asin": f"B00{k}", "overall": 5.0, "unixReviewTime": 1388534400 + k * day,
               "reviewText": "too few"} for k in range(2)]
    lines.append({"reviewerID": "A000", "asin": "BRARE", "overall": 4.0, "unixReviewTime": 1398534400, "reviewText": "rare"})
    with gzip.open(raw / "reviews_Beauty_5.json.gz", "wt") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
    metas = [{"asin": f"B{i:03d}", "title": f"Cream number {i}", "categories": [["Beauty", "Skin Care"]],
              "description": f"A cream, kind {i % 3}.", "salesRank": {"Beauty": i}} for i in range(items)]
    metas += [{"asin": "BRARE", "title": "Rare soap", "categories": [["Beauty"]]}, {"asin": "BNOREVIEW", "title": "x"}]
    with gzip.open(raw / "meta_Beauty.json.gz", "wt") as handle:
        handle.write("".join(repr(meta) + "\n" for meta in metas))


@pytest.mark.slow
def test_rdrec_amazon2014_profile_end_to_end(tmp_path, monkeypatch, tiny_model):
    import stages.cf
    import stages.cf_select
    import stages.evaluate
    import stages.ingest
    import stages.rationales

    write_amazon_2014(tmp_path / "raw")
    params = overlay(yaml.safe_load((ROOT / "params.yaml").read_text()), yaml.safe_load(PROFILE.read_text()))
    params["ingest"]["source"]["path"] = str(tmp_path / "raw")
    params["ingest"]["topn_negatives"] = 3
    params["ingest"]["subsets"]["test_tiny_rows"] = 4
    params["cf"].update(model="sasrec")
    params["cf"]["train"].update(max_epochs=2, patience=1)
    params["llm"].update(cache_path=str(tmp_path / "llm.sqlite"))
    params["rationales"].update(count=10)
    tiny = tiny_params(tiny_model)
    params["rec"] = {**tiny["rec"], "threads": 1}
    params["rdrec"] = student_params()
    params["evaluate"].update(subset="test", selection_subset="valid")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)

    stages.ingest.main()
    interactions = read_frame("data/ingest/interactions.parquet", schemas.INTERACTIONS)
    assert interactions["user"].nunique() == 12 and interactions["item"].nunique() == 9  # 5-core removed the rest
    last = interactions.sort_values(["user", "timestamp", "row"]).groupby("user").tail(1)
    assert (last["split"] == "test").all() and (interactions["split"] == "test").sum() == 12  # leave-one-out
    assert interactions["review"].str.startswith("Item ").all()  # reviews kept
    candidates = read_frame("data/ingest/topn_candidates.parquet", schemas.TOPN_CANDIDATES)
    assert set(candidates.loc[candidates["positive"] == 1, "row"]) <= set(last.loc[last["label"] == 1, "row"])

    stages.cf.main("sasrec")
    kept = ("sasrec", "rdrec", "rdrec_no_rationales")  # the models this project trains
    monkeypatch.setattr(registry, "MODELS", tuple(entry for entry in registry.MODELS if entry.name in kept))
    stages.cf_select.main()  # cf.model sasrec, the one CF model here
    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend(
        lambda request: " wants gentle skin care.\nItem attributes: a mild cream."))
    stages.rationales.main()
    rationales = json.loads(Path("metrics/rationales.json").read_text())
    assert rationales["input_kind"] == "review" and rationales["by_input_kind"]["review"]["parsed"] == 10
    stages.rdrec.main("rdrec")
    stages.rdrec.main("rdrec_no_rationales")
    # leave-one-out: one test row per user, so one next target each (the held-out last item), and a
    # topn target where that item is liked
    ranks = read_frame("data/ranking/rdrec.parquet", schemas.RANKS)
    held_out = sorted(last[["user", "item"]].to_numpy().tolist())
    assert sorted(ranks.loc[ranks["task"] == "next", ["user", "item"]].to_numpy().tolist()) == held_out
    liked = sorted(last.loc[last["label"] == 1, ["user", "item"]].to_numpy().tolist())
    assert sorted(ranks.loc[ranks["task"] == "topn", ["user", "item"]].to_numpy().tolist()) == liked
    stages.evaluate.main()
    report = join_report(*(json.loads(Path(path).read_text()) for path in ("metrics/rdrec.json", "metrics/detail/rdrec.json")))
    assert report["topn_users"] == candidates["user"].nunique() > 0
    assert report["full_users"] == len(liked) and report["next_users"] == len(held_out)
    for name in ("topn_hr@1", "full_hr@10", "full_ndcg@10", "next_ndcg@10"):  # the default's headline
        assert report[f"{name}_low"] <= report[name] <= report[f"{name}_high"]
    assert "auc" not in report and "next_ndcg@10" in report["vs_rdrec_no_rationales"]


def test_prompts_are_short_share_the_user_prefix_and_ignore_marker_text(tiny_model):
    from transformers import AutoTokenizer

    from pipeline.rdrec.tasks import TaskEncoder
    from pipeline.rec.examples import CFVectors
    from pipeline.rec.prompts import PromptItem

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    vectors = CFVectors(np.eye(2, 4, dtype=np.float32), np.arange(12, dtype=np.float32).reshape(3, 4))
    catalog = {0: PromptItem("Alpha"), 1: PromptItem("Bravo <cf> <brk>"), 2: PromptItem("Charlie")}
    encoder = TaskEncoder(tokenizer, catalog, vectors, history_items=1, max_rationale_tokens=4)
    first, second = (encoder.rank(-1, 1, item, 0, [0, 1], [1, 0], state_row=5) for item in (0, 2))
    assert first.prompt_ids[: first.target_start] == second.prompt_ids[: second.target_start]  # one prefix per user
    history = tokenizer.decode(first.prompt_ids[: first.target_start])
    assert "rated: Bravo (not liked). Will" in history and "Alpha" not in history  # last 1 history item only
    assert len(first.slot_positions) == 2 and first.slot_vectors.tolist() == [[0, 1, 0, 0], [0, 1, 2, 3]]
    assert tokenizer.decode(first.answer_ids[:-1]) == "No" and not first.reasoning
    attributes = encoder.attributes(3, 1, 1, "a b c d e f g h")
    assert attributes.reasoning and attributes.answer_cut and len(attributes.answer_ids) == 5  # 4 + eos
    assert attributes.slot_vectors.tolist() == [[4, 5, 6, 7]] and "Item Bravo<|pad|>. What are its attributes?" in tokenizer.decode(attributes.prompt_ids)
