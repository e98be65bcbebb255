"""Typed errors of the schemas package.

Messages name the field and the problem, never the rejected value: a rejected value may be a
defender's name or a place, and error messages end up in logs and HTTP answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

_PYDANTIC_CUSTOM_PREFIXES = ("Value error, ", "Assertion failed, ")
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.:/-]{1,40}$")
# Model-level validators write "field: problem" so the problem can be filed under that field.
_FIELD_PREFIXED = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*): (.+)$", re.DOTALL)


class SchemaError(ValueError):
    """Base class of every error raised by ``schemas``."""


def quote_if_safe(value: object) -> str:
    """``'value'`` if it looks like a short code or identifier, else a neutral placeholder.

    Lets messages name a bad code ("'kiling' is not a violation code") without ever echoing
    free text that could be case content.
    """
    if isinstance(value, str) and _SAFE_TOKEN.match(value):
        return repr(value)
    return "the given value"


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field; ``path`` is dotted, with ``[i]`` for array elements."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class RecordValidationError(SchemaError):
    """A record or payload is invalid; ``problems`` lists every ``field: problem``."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))

    @classmethod
    def single(cls, path: str, problem: str) -> RecordValidationError:
        return cls([FieldProblem(path, problem)])

    @classmethod
    def from_pydantic(cls, error: ValidationError, prefix: str = "") -> RecordValidationError:
        return cls(validation_problems(error, prefix))


def validation_problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Every problem of a pydantic error as ``path: problem``, never with the rejected value.

    The one converter of validation errors: records, the API, config files, key statements and
    envelopes all report problems this way.
    """
    return [
        _problem_from_pydantic(item, prefix)
        for item in error.errors(include_input=False, include_url=False)
    ]


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    return "; ".join(str(problem) for problem in validation_problems(error, prefix))


class UnknownTermError(SchemaError, LookupError):
    """A code or label is not part of a typology vocabulary."""

    def __init__(self, vocabulary: str, code: object) -> None:
        self.vocabulary = vocabulary
        self.code = code
        super().__init__(f"{quote_if_safe(code)} is not a known {vocabulary} code")


class UnknownLanguageError(SchemaError, LookupError):
    """Labels exist only in the typology's languages."""

    def __init__(self, language: object, known: Iterable[str]) -> None:
        self.language = language
        super().__init__(
            f"no labels in language {quote_if_safe(language)}; known: {', '.join(known)}"
        )


def format_loc(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("payload", "victims", 0, "name")`` -> ``payload.victims[0].name``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path or "$"


def _problem_from_pydantic(item: object, prefix: str) -> FieldProblem:
    assert isinstance(item, dict)
    message = str(item["msg"])
    for custom_prefix in _PYDANTIC_CUSTOM_PREFIXES:
        message = message.removeprefix(custom_prefix)
    loc: list[int | str] = [part for part in item["loc"] if not _is_union_tag(part)]
    if item["type"] == "extra_forbidden":
        message = "unknown field"
    field_prefixed = _FIELD_PREFIXED.match(message)
    if item["type"] == "value_error" and field_prefixed is not None:
        loc.extend(field_prefixed.group(1).split("."))
        message = field_prefixed.group(2)
    return FieldProblem(format_loc(loc, prefix), message)


def _is_union_tag(part: object) -> bool:
    # pydantic adds the chosen union branch to ``loc`` ("str", "function-after[...]", ...);
    # those are not field names and would only confuse a person reading the error.
    return isinstance(part, str) and (
        part in {"str", "int", "bool", "list", "dict", "none"}
        or part.startswith(("constrained-", "function-", "literal[", "lax-", "strict-"))
        or "[" in part
    )
