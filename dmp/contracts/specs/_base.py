"""What every spec model shares: strict validation and errors located at a field."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class _Model(BaseModel):
    # strict: YAML already gives typed values; "14" for window_days or 1 for a boolean is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


def field_error(field_name: str, message: str) -> PydanticCustomError:
    """An error located at ``field_name`` inside the model being validated.

    A model validator only knows its own location; the ``dmp_field`` type carries the field so
    :func:`dmp.contracts.specs.issues.issues_from_validation_error` can name it in the message.
    """
    return PydanticCustomError("dmp_field", "{message}", {"message": message, "field": field_name})


def show(value: Any, limit: int = 60) -> str:
    """A value as the marketer wrote it, cut short so one bad list cannot flood the report."""
    text = repr(value.isoformat() if isinstance(value, date) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
