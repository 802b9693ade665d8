"""params.yaml's models and how a stage reads them: `Strict`, the base of every section's model,
and `load_section`, one section (or a sub-section, "rec.prompt") validated as its model."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from pipeline.errors import BadParams, MissingInput


class Strict(BaseModel):
    """The base of every params.yaml model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


Section = TypeVar("Section", bound=BaseModel)

PARAMS_FILE = Path("params.yaml")


def at_most(other: str) -> AfterValidator:
    """A field's check that it is not above the earlier field `other` (`min_new_tokens` <= `max_new_tokens`)."""
    def check(value: int, info: ValidationInfo) -> int:
        bound = info.data.get(other)
        if bound is not None and value > bound:
            raise ValueError(f"{value} exceeds {other} {bound}")
        return value
    return AfterValidator(check)


def key_errors(model: BaseModel, problems: dict[str, str]) -> ValidationError:
    """A model validator's findings (key -> why) as one error per key, for the validator to raise:
    load_section then names each key in full (`experts.train.patience: ...`), not the section alone."""
    return ValidationError.from_exception_data(type(model).__name__, [
        InitErrorDetails(type=PydanticCustomError("value_error", "{why}", {"why": why}), loc=(key,),
                         input=getattr(model, key, None)) for key, why in problems.items()])


def nested_errors(err: ValidationError, *under: str | int) -> ValidationError:
    """`err` (a model validated inside another's validator) with each key placed under `under`."""
    return ValidationError.from_exception_data(err.title, [
        InitErrorDetails(type=PydanticCustomError(e["type"], "{message}", {"message": e["msg"]}),
                         loc=(*under, *e["loc"]), input=e["input"]) for e in err.errors()])


def load_section(name: str, model: type[Section], path: Path = PARAMS_FILE) -> Section:
    """Return params.yaml's section at the dotted `name` ("ingest", "rec.prompt") validated as
    `model`; an invalid one is a one-line error naming each bad key in full (`cf.sasrec.heads`)."""
    if not path.exists():
        raise MissingInput(f"{path}: not found; run stages from the project root")
    node = yaml.safe_load(path.read_text()) or {}
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise BadParams(f"{path}: no section '{name}'")
        node = node[part]
    try:
        return model.model_validate(node)
    except ValidationError as err:
        raise BadParams(f"{path}: {invalid_keys(name, err)}") from None


def invalid_keys(name: str, err: ValidationError) -> str:
    """`err` as "key: why (got value)" per bad key, keys in full from the section `name`, on one line."""
    problems = []
    for error in err.errors():
        key = ".".join([name, *(str(part) for part in error["loc"])])
        value = error.get("input")
        got = "" if error["type"] == "missing" or isinstance(value, (dict, list)) else f" (got {value!r})"
        problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}{got}")
    return "; ".join(problems)
