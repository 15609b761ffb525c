"""What every spec model shares: strict validation and errors located at a field."""

from __future__ import annotations

import reprlib
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


# reprlib walks at most a few items of each list / mapping and a few levels deep, so showing a
# value costs the same whether it holds 3 leaves or 400 million shared ones (a YAML alias bomb).
_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 4, 4, 4, 4
_REPR.maxstring = _REPR.maxother = 48


def show(value: Any, limit: int = 60) -> str:
    """A value as the marketer wrote it, cut short so one bad list cannot flood the report.

    The value is cut BEFORE it is rendered: ``repr`` of a huge or deeply shared value never ends.
    """
    text = _REPR.repr(value.isoformat() if isinstance(value, date) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
