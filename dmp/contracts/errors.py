"""Errors that the CLI turns into a clear message and a non-zero exit code."""

from __future__ import annotations


class DmpError(Exception):
    """A user-facing failure: the message says what is wrong and where (file, field, expected)."""


class QualityGateError(DmpError):
    """A Great Expectations suite failed; the message names the expectation and the offending values."""


class SpecError(DmpError):
    """A segment or channel spec is invalid; the message names the file, the field path and what is allowed."""
