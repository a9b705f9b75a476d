"""The base of every config schema, and validation that reports the first
problem in one line naming its key."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from pipeline.core.errors import PipelineError

# Names become file paths, DVC stage names and MLflow experiment/run names.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$")]
# A seed numpy's RandomState takes (scikit-learn's random_state, the course's np.random.seed): below 2^32.
Seed = Annotated[int, Field(ge=0, lt=2**32)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def validate(schema: type[Schema], data: object, origin: str):
    """Validate data against schema; the first problem becomes one PipelineError line."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise PipelineError(f"{origin}: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    # The data source is a union told apart by its `kind`; pydantic puts the
    # kind's value into the location (source.moons.noise): drop it.
    loc = first["loc"]
    parts = [str(p) for i, p in enumerate(loc) if not (i and loc[i - 1] == "source")]
    where = ".".join(parts)
    message = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(first["type"], first["msg"])
    message = message.removeprefix("Value error, ")
    value = first.get("input")
    scalar = first["type"] not in ("missing", "extra_forbidden") and not isinstance(value, (dict, list))
    shown = f" (got {value!r})" if scalar else ""
    return f"{where}: {message}{shown}" if where else f"{message}{shown}"
