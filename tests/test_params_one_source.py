"""One source of truth per setting: params.yaml holds every default, the params models only
validate. Each stage's section (and every model nested in it) validates from params.yaml as it is,
and names every one of its keys missing when given none: a field default that came back would
pass the second test's empty section unnoticed."""
from __future__ import annotations

import types
import typing

import pytest
from params_base import section
from pydantic import BaseModel, ValidationError

from pipeline.cf.config import CFParams
from pipeline.experts.params import ExpertsParams, GateParams
from pipeline.hard_scores import HardScoresParams
from pipeline.ingest.config import IngestParams
from pipeline.llm.config import LLMConfig
from pipeline.rdrec.params import RDRecParams
from pipeline.rec.params import RecParams
from pipeline.recommend.params import RecommendParams
from stages.evaluate import EvaluateParams
from pipeline.explain.params import ExplainParams
from stages.keywords import KeywordParams
from stages.prepare_model import PrepareModelParams
from stages.rationales import RationaleParams
from stages.traces import TraceParams

# params.yaml section -> the model a stage validates it with (stages/*.py, pipeline/cli/recommend.py)
SECTIONS = {
    "ingest": [IngestParams], "cf": [CFParams], "evaluate": [EvaluateParams],
    "prepare_model": [PrepareModelParams], "llm": [LLMConfig], "keywords": [KeywordParams],
    "traces": [TraceParams], "hard_scores": [HardScoresParams], "rationales": [RationaleParams], "rdrec": [RDRecParams],
    "rec": [RecParams], "experts": [ExpertsParams], "gate": [GateParams],
    "explain": [ExplainParams], "recommend": [RecommendParams],
}


def _nested(model: type[BaseModel], path: str) -> list[tuple[str, type[BaseModel]]]:
    """(params.yaml path, model) of `model` and of every model a field of it holds (directly or as
    `X | None`), depth first."""
    found = [(path, model)]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _nested(annotation, f"{path}.{name}")
    return found


MODELS = [pair for name, models in SECTIONS.items() for model in models for pair in _nested(model, name)]
IDS = [f"{path}:{model.__name__}" for path, model in MODELS]


def test_the_list_reaches_the_models_with_removed_defaults():
    names = {model.__name__ for _, model in MODELS}
    assert {"SourceParams", "TimestampParams", "TimeRangeParams", "FilterParams", "SplitParams", "SubsetParams",
            "SubsetsParams", "LocalConfig", "OpenAIConfig", "VLLMConfig", "LoraParams", "LossParams",
            "WordBudgets", "GoldParams"} <= names


@pytest.mark.parametrize(("path", "model"), MODELS, ids=IDS)
def test_params_yaml_section_validates(path, model):
    model.model_validate(section(path))


@pytest.mark.parametrize(("path", "model"), MODELS, ids=IDS)
def test_an_empty_section_names_every_key_missing(path, model):
    with pytest.raises(ValidationError) as raised:
        model.model_validate({})
    missing = {error["loc"][0] for error in raised.value.errors() if error["type"] == "missing"}
    assert missing == set(model.model_fields)
