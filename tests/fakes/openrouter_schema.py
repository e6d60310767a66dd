"""Checking requests to the fake OpenRouter, and its own answers, against OpenRouter's published schemas.

The schemas are transcribed from OpenRouter's OpenAPI document into openrouter_schemas.json
(see transcribe_openrouter_schemas.py); OpenAPI 3.1 schemas are JSON Schema 2020-12. Query
parameters arrive as strings and are coerced to their declared type first, as the real server
reads them. The document never says ``additionalProperties: false``, so a body field it does not
name is valid; it is reported apart, so a test can still see that Purser sent something the
document does not know.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SCHEMAS = Path(__file__).resolve().parent / "openrouter_schemas.json"
INTEGER = re.compile(r"-?\d+")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Invalid:
    """A request refused because it does not fit the document (answered 400)."""

    method: str
    path: str
    problem: str


@dataclass(frozen=True)
class Unknown:
    """A field (``body.x``, ``query.x``) the document does not name: accepted, but noted."""

    method: str
    path: str
    field: str


@dataclass
class Checked:
    problem: str | None = None
    query: dict[str, Any] = field(default_factory=dict)  # the declared parameters, coerced
    unknown: list[str] = field(default_factory=list)


def _validator(schema: dict) -> Draft202012Validator:
    # format_checker: `uuid` (workspace_id, guardrail ids) is checked as the server checks it
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _problem(validator: Draft202012Validator, value: Any, where: str) -> str | None:
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    at = where + error.json_path.removeprefix("$")
    return f"{at}: {error.message}"


class Operation:
    def __init__(self, name: str, spec: dict) -> None:
        self.name = name
        self.params = {
            (where, pname): (p["required"], p["schema"], _validator(p["schema"]))
            for where, named in spec["parameters"].items()
            for pname, p in named.items()
        }
        body = spec["body"]
        self.body_required = bool(body and body["required"])
        self.body_schema = body["schema"] if body else None
        self.body = _validator(body["schema"]) if body else None
        self.responses = {status: _validator(schema) for status, schema in spec["responses"].items()}

    def check(self, path_params: dict[str, str], query: dict[str, str], body: Any, body_sent: bool) -> Checked:
        checked = Checked()
        declared = {pname for where, pname in self.params if where == "query"}
        checked.unknown += [f"query.{name}" for name in query if name not in declared]
        for (where, pname), (required, schema, validator) in self.params.items():
            raw = (path_params if where == "path" else query).get(pname)
            if raw is None:
                if required:
                    checked.problem = checked.problem or f"{where}.{pname}: is required"
                continue
            value, problem = _coerce(raw, schema)
            problem = problem or _problem(validator, value, f"{where}.{pname}")
            if problem:
                checked.problem = checked.problem or (problem if problem.startswith(where) else f"{where}.{pname}: {problem}")
            elif where == "query":
                checked.query[pname] = value
        if checked.problem or self.body is None:
            return checked
        if body is None:
            if self.body_required:
                checked.problem = "body: a JSON object is required" if not body_sent else "body: is not valid JSON"
            return checked
        checked.problem = _problem(self.body, body, "body")
        if checked.problem is None:
            _unknown_fields(self.body_schema, body, "body", checked.unknown)
        return checked

    def check_answer(self, status: int, body: Any) -> str | None:
        validator = self.responses.get(str(status))
        return None if validator is None else _problem(validator, body, f"answer {status}")


def _coerce(raw: str, schema: dict) -> tuple[Any, str | None]:
    """A query string as the declared type; a string that is not one stays, and fails validation."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if schema.get("x-openrouter-type") == "boolean" and raw not in ("true", "false"):
        return raw, f"must be 'true' or 'false', not {raw!r}"
    if "integer" in types and INTEGER.fullmatch(raw):
        return int(raw), None
    if "number" in types and NUMBER.fullmatch(raw):
        return float(raw), None
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true", None
    return raw, None


def _unknown_fields(schema: Any, value: Any, where: str, out: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema and "properties" not in schema:
            # the arm the value fits is the one whose fields count
            arm = next((a for a in schema[combinator] if _validator(a).is_valid(value)), None)
            _unknown_fields(arm, value, where, out)
    # allOf arms describe one object together: a field named by any arm is known
    parts = [schema, *[a for a in schema.get("allOf", []) if isinstance(a, dict)]]
    properties = {name: sub for part in parts for name, sub in part.get("properties", {}).items()}
    open_ended = any("additionalProperties" in part or "patternProperties" in part for part in parts)
    if isinstance(value, dict) and properties:
        for name, item in value.items():
            if name in properties:
                _unknown_fields(properties[name], item, f"{where}.{name}", out)
            elif not open_ended:
                out.append(f"{where}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _unknown_fields(schema["items"], item, f"{where}[{i}]", out)


class Schemas:
    """The transcribed operations, by their ``METHOD /path-template`` names."""

    def __init__(self, path: Path = SCHEMAS) -> None:
        document = json.loads(path.read_text())
        self.source = document["source"]
        self.operations = {name: Operation(name, spec) for name, spec in document["operations"].items()}

    def __getitem__(self, name: str) -> Operation:
        return self.operations[name]
