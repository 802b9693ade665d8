"""Device placement (params.yaml rec.device, pipeline/rec/device.py): how a setting resolves, that
the CPU path moves and copies nothing (the scores of a stage are the ones it gave before
placement existed), and, on the `meta` device (shapes only, no data), that the tensors library
code creates follow the model's device instead of defaulting to the CPU. No GPU is used here."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.experts.training import cache_lower_states, padded_states
from pipeline.rec.batching import answer_states, collate
from pipeline.rec.device import place_model, resolve_device
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors
from pipeline.rec.fusion import ExpertLoRALinear, routing
from pipeline.rec.model import LoraParams, build_rec_model
from pipeline.rec.params import RecParams
from pipeline.rec.prefix import prefix_kv, split_example, suffix_scores
from pipeline.rec.prompts import get_template
from pipeline.rec.split_body import upper_states
from stages.rec_stage import run_rec_stage


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("device")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    return root


def _examples(root, rec, rows=slice(10, 22)):
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"), None, 3, 0)
    return build_examples(frame.iloc[rows], catalog, rec.tokenizer, get_template("v2"), 3, vectors)


def test_auto_is_the_cpu_on_a_machine_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("setting", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_an_error_naming_the_param(monkeypatch, setting):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"rec\.device is '" + setting + "' but torch sees no CUDA device"):
        resolve_device(setting)


@pytest.mark.parametrize("setting", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:0 ", "mps", "", "cpu:0"])
def test_settings_outside_auto_cpu_cuda_are_rejected(tiny, setting):
    section = {**rec_tiny.tiny_params(tiny / "tiny")["rec"], "device": setting}
    with pytest.raises(ValidationError, match="device"):
        RecParams.model_validate(section)
    with pytest.raises(ValueError, match=r"rec\.device must be auto, cpu, cuda or cuda:N"):
        resolve_device(setting)


def test_the_rec_section_has_no_device_default(tiny):
    section = rec_tiny.tiny_params(tiny / "tiny")["rec"]
    assert RecParams.model_validate(section).device == "cpu"
    del section["device"]
    with pytest.raises(ValidationError, match="device"):
        RecParams.model_validate(section)


def test_cuda_index_rules_without_touching_a_gpu(monkeypatch):
    """The resolver's rules when torch reports two GPUs (nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"rec\.device is 'cuda:2' but torch sees 2 CUDA device"):
        resolve_device("cuda:2")
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun: each rank its LOCAL_RANK's GPU
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="each rank uses cuda:LOCAL_RANK"):
        resolve_device("cuda:0")


def test_placing_on_the_cpu_moves_and_copies_nothing(tiny):
    torch.manual_seed(1)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(tiny / "tiny"), lora, cf_dim=rec_tiny.CF_DIM,
                          projector_expansion=2, device=resolve_device("cpu"))
    storage = {name: t.data_ptr() for name, t in rec.state_dict().items()}
    assert place_model(rec, "cpu") is rec and rec.device == torch.device("cpu")
    assert {name: t.data_ptr() for name, t in rec.state_dict().items()} == storage
    batch = collate(_examples(tiny, rec), rec.pad_id, with_answers=True)
    moved = batch.to(torch.device("cpu"))
    assert all(getattr(moved, f) is getattr(batch, f) for f in vars(batch))


@pytest.mark.parametrize("load", [False, True])
def test_frozen_weights_reach_the_device_already_cast(tiny, tmp_path, monkeypatch, load):
    # an 8B backbone moved in fp32 and cast on the GPU would need 32 GB there before the cast
    from pipeline.rec import model as model_module

    placed = {}

    def spy(rec, device):
        placed.update({name: p.dtype for name, p in rec.named_parameters()})
        return place_model(rec, device)

    path = str(tiny / "tiny")
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8))
    if load:
        model_module.save_rec_model(build_rec_model(path, lora, cf_dim=rec_tiny.CF_DIM,
                                                    projector_expansion=2), tmp_path / "saved")
    monkeypatch.setattr(model_module, "place_model", spy)
    if load:
        rec = model_module.load_rec_model(path, tmp_path / "saved", "cpu", frozen_dtype="bfloat16")
    else:
        rec = build_rec_model(path, lora, cf_dim=rec_tiny.CF_DIM, projector_expansion=2,
                              frozen_dtype="bfloat16", device="cpu")
    body = {name: dtype for name, dtype in placed.items() if name.startswith("llm.") and "lora_" not in name}
    assert body and set(body.values()) == {torch.bfloat16}
    assert {dtype for name, dtype in placed.items() if name not in body} == {torch.float32}  # LoRA, projector
    assert placed == {name: p.dtype for name, p in rec.named_parameters()}


def test_calibration_reads_the_fp32_embeddings_before_the_cast(tiny):
    vectors = np.random.default_rng(0).normal(size=(64, rec_tiny.CF_DIM)).astype(np.float32)
    scales = []
    for dtype in ("float32", "bfloat16"):
        torch.manual_seed(3)
        lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8))
        rec = build_rec_model(str(tiny / "tiny"), lora, cf_dim=rec_tiny.CF_DIM,
                              projector_expansion=2, calibration_vectors=vectors, frozen_dtype=dtype)
        scales.append(rec.projector.scale.tolist())
    assert scales[0] != [1.0, 1.0] and scales[0] == scales[1]


# tallrec on the tiny data with rec.device "cpu" (2 steps of packed training, then valid_small,
# test_small and the prefix-cached top-N candidates, row -1), as this code scored it with 1 thread
# when the packed training landed (the computation changed there: disjoint stage rows, packs).
TALLREC_ROWS_BEFORE = list(range(30, 48))  # test_small and valid_small rows; tallrec ranks no top-N (registry)
TALLREC_SCORES_BEFORE = [
    -0.51664, 0.68942, 0.16479, 0.55892, 0.84306, -0.44998, -0.10699, 0.67626, 0.53868, -0.00778, 0.53399, -0.09273,
    -0.3591, -0.24481, -0.51664, 0.68942, 0.16479, 0.55892,
]


def test_a_stage_on_the_cpu_device_trains_and_scores_as_before_placement(tmp_path, monkeypatch):
    rec_tiny.write_tiny_model(tmp_path / "tiny")
    rec_tiny.write_tiny_artifacts(tmp_path)
    params = rec_tiny.tiny_params(tmp_path / "tiny")
    assert params["rec"]["device"] == "cpu"
    rec_tiny.write_params(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_rec_stage("tallrec")
    finally:
        torch.set_num_threads(threads)
    predictions = read_frame(tmp_path / "data/predictions/tallrec.parquet", schemas.PREDICTIONS)
    assert predictions["row"].tolist() == TALLREC_ROWS_BEFORE
    np.testing.assert_allclose(predictions["score"].to_numpy(), TALLREC_SCORES_BEFORE, rtol=0, atol=1e-5)


@pytest.fixture
def meta_model(tiny):
    """The tiny model placed on `meta` by the library's own build path. Eager attention: the SDPA
    mask code asks for a value (`.all()`), which meta tensors do not have."""
    torch.manual_seed(2)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(tiny / "tiny"), lora, cf_dim=rec_tiny.CF_DIM,
                          projector_expansion=2, device="meta")
    rec.llm.get_base_model().set_attn_implementation("eager")
    return rec.eval()


def test_model_passes_run_where_the_model_is_on_meta(tiny, meta_model):
    """`meta` tensors have a device and shapes but no data: a tensor that library code made on the
    CPU and combined with the model's would raise a device mismatch. This checks where tensors are
    created (batch moves, masks, positions, the expanded prefix KV cache, cached lower-layer states),
    not any number; the fp32 answer logit is stubbed (autocast has no meta backend)."""
    rec = meta_model
    assert {p.device.type for p in rec.parameters()} | {b.device.type for b in rec.buffers()} == {"meta"}
    examples = _examples(tiny, rec)  # CF slots in the user part and at the target
    batch = collate(examples, rec.pad_id, with_answers=False)  # CPU tensors, as collate makes them
    with torch.no_grad():
        hidden = rec.hidden_states(batch)
    assert hidden.device.type == "meta" and hidden.shape == (len(examples), batch.input_ids.shape[1], 32)

    seen = []
    rec.answer_logit = lambda states: seen.append(states) or states[:, 0]
    cut = examples[0].target_start
    with torch.no_grad():
        kv = prefix_kv(rec, split_example(examples[0], cut)[0])
        suffix_scores(rec, kv, [split_example(examples[0], cut)[1]] * 3)
    assert {t.device.type for layer in kv for t in layer} == {"meta"}
    assert seen[-1].device.type == "meta" and seen[-1].shape == (3, 32)

    with torch.no_grad():
        cache = cache_lower_states(rec, examples[:4], lower=1, batch_size=2)
        chunk = collate(examples[:4], rec.pad_id, with_answers=True)
        upper = upper_states(rec, padded_states(cache, examples[:4], chunk.input_ids.shape[1]),
                             chunk.attention_mask, lower=1)
    assert {t.device.type for t in cache.values()} == {"meta"}
    assert upper.device.type == "meta" and upper.shape == (4, chunk.input_ids.shape[1], 32)


def test_batch_moves_answer_positions_and_expert_weights_follow_the_device(tiny):
    hidden = torch.empty(3, 7, 32, device="meta")
    states = answer_states(hidden, torch.tensor([7, 2, 5]))  # CPU lengths, as collate makes them
    assert states.device.type == "meta" and states.shape == (3, 32)
    rec = build_rec_model(str(tiny / "tiny"), LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0)))
    batch = collate(_examples(tiny, rec), rec.pad_id, with_answers=True)
    on_meta = batch.to("meta")
    assert {getattr(on_meta, f).device.type for f in vars(on_meta) if getattr(on_meta, f) is not None} == {"meta"}
    assert on_meta.expert_weights is None and on_meta.slot_vectors.shape == batch.slot_vectors.shape
    layer = ExpertLoRALinear(torch.nn.Linear(32, 16), torch.zeros(3, 2, 32), torch.zeros(3, 16, 2), 2.0).to("meta")
    with routing(layer, torch.tensor([[0.5, 0.5, 0.0]])):  # a CPU gate's weights
        assert layer.weights.device.type == "meta"
        out = layer(torch.empty(1, 5, 32, device="meta"))
    assert out.device.type == "meta" and out.shape == (1, 5, 16)
