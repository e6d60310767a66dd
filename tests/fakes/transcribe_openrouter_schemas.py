"""Transcribe, from OpenRouter's OpenAPI document, the schemas the fake OpenRouter checks requests against.

Regenerate tests/fakes/openrouter_schemas.json from a copy of the document (OpenRouterTeam/docs,
openapi/openapi.yaml) with:

    git -C <docs checkout> show <commit>:openapi/openapi.yaml > /tmp/openapi.yaml
    .venv/bin/python tests/fakes/transcribe_openrouter_schemas.py /tmp/openapi.yaml --commit <commit>

For each operation Purser (or a test spending through a key) uses, it keeps the query and path
parameters, the JSON request body and the JSON response of every documented status, with every
``$ref`` resolved inline (none of these schemas is recursive) and the prose (``description``,
``example``, ``summary``) dropped: the fake needs what is checked, not what is explained.
The document's schemas are JSON Schema 2020-12 (OpenAPI 3.1) and say nothing of additional
properties, so an unknown body field is valid by the document; the fake records such fields apart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE / "openrouter_schemas.json"
REPOSITORY = "OpenRouterTeam/docs"
DOCUMENT = "openapi/openapi.yaml"
COMMIT = "c26125a5fa92cb52ac67f0c75b717229567db716"

#: (method, path) of every operation the fake serves; the paths are the document's, under /api/v1
OPERATIONS = [
    ("GET", "/keys"),
    ("POST", "/keys"),
    ("GET", "/keys/{hash}"),
    ("PATCH", "/keys/{hash}"),
    ("DELETE", "/keys/{hash}"),
    ("GET", "/workspaces"),
    ("POST", "/workspaces"),
    ("GET", "/workspaces/{id}"),
    ("PATCH", "/workspaces/{id}"),
    ("DELETE", "/workspaces/{id}"),
    ("GET", "/workspaces/{id}/budgets"),
    ("GET", "/workspaces/{id}/budgets/{interval}"),
    ("PUT", "/workspaces/{id}/budgets/{interval}"),
    ("DELETE", "/workspaces/{id}/budgets/{interval}"),
    ("GET", "/guardrails"),
    ("POST", "/guardrails"),
    ("GET", "/guardrails/{id}"),
    ("PATCH", "/guardrails/{id}"),
    ("DELETE", "/guardrails/{id}"),
    ("GET", "/guardrails/{id}/assignments/keys"),
    ("POST", "/guardrails/{id}/assignments/keys"),
    ("POST", "/guardrails/{id}/assignments/keys/remove"),
    ("GET", "/models"),
    ("POST", "/chat/completions"),
]

#: prose, and code-generator hints: nothing a validator reads
NOISE = {"description", "example", "examples", "summary", "externalDocs"}
#: keywords whose value maps names to schemas: their keys are names, never keywords
NAMED = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}


class Transcriber:
    def __init__(self, document: dict) -> None:
        self.components = document.get("components", {})
        self.paths = document["paths"]

    def resolve(self, node: Any, trail: tuple[str, ...] = ()) -> Any:
        """The node with every $ref inlined and the prose dropped."""
        if isinstance(node, list):
            return [self.resolve(item, trail) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            if ref in trail:
                raise ValueError(f"recursive schema {ref}: the transcription would need $defs")
            root, section, name = ref.removeprefix("#/").split("/")  # #/components/<section>/<name>
            assert root == "components", ref
            target = self.components[section][name]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return self.resolve({**target, **extra}, (*trail, ref))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in NOISE or key.startswith("x-speakeasy"):
                continue
            if key in NAMED and isinstance(value, dict):
                out[key] = {name: self.resolve(schema, trail) for name, schema in value.items()}
            else:
                out[key] = self.resolve(value, trail)
        return simplify(out)

    def operation(self, method: str, path: str) -> dict:
        item = self.paths[path]
        op = item[method.lower()]
        parameters: dict[str, dict] = {}
        for parameter in [*item.get("parameters", []), *op.get("parameters", [])]:
            parameter = self.resolve(parameter)
            if parameter["in"] not in ("query", "path"):
                continue  # headers (routing metadata opt-in) are not checked
            kept = {"required": parameter.get("required", False), "schema": parameter.get("schema", {})}
            parameters.setdefault(parameter["in"], {})[parameter["name"]] = kept
        body = None
        if "requestBody" in op:
            request = self.resolve(op["requestBody"])
            body = {"required": request.get("required", False), "schema": request["content"]["application/json"]["schema"]}
        responses = {}
        for status, answer in op.get("responses", {}).items():
            schema = answer.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                responses[str(status)] = self.resolve(schema)
        return {"operationId": op.get("operationId"), "parameters": parameters, "body": body, "responses": responses}


def simplify(schema: dict) -> dict:
    # `allOf: [X, {description: ...}]` is how the document describes a $ref; without the prose
    # the second arm is empty, and X alone says the same.
    arms = schema.get("allOf")
    if isinstance(arms, list):
        arms = [arm for arm in arms if arm != {}]
        if len(arms) == 1 and set(schema) == {"allOf"}:
            return arms[0]
        schema["allOf"] = arms
    return schema


def transcribe(document: dict, commit: str) -> dict:
    t = Transcriber(document)
    return {
        "source": {"repository": REPOSITORY, "path": DOCUMENT, "commit": commit},
        "generated_by": "tests/fakes/transcribe_openrouter_schemas.py",
        "dialect": "https://json-schema.org/draft/2020-12/schema",
        "notes": [
            "Request bodies do not set additionalProperties: false, so unknown fields are valid by the document; the fake records them in fake.unknown_fields.",
            "Query parameters arrive as strings; the fake coerces them to the declared type before validating; x-openrouter-type: boolean means the strings 'true' and 'false'.",
        ],
        "operations": {f"{method} {path}": t.operation(method, path) for method, path in OPERATIONS},
    }


def dump(transcribed: dict) -> str:
    # One operation a line: diffs of a regenerated file show which operation changed.
    head = {k: v for k, v in transcribed.items() if k != "operations"}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "operations": {']
    ops = list(transcribed["operations"].items())
    for i, (name, op) in enumerate(ops):
        lines.append(f"  {json.dumps(name)}: {json.dumps(op, sort_keys=True)}" + ("," if i < len(ops) - 1 else ""))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", type=Path, help="a copy of openapi/openapi.yaml")
    parser.add_argument("--commit", default=COMMIT, help="the commit of OpenRouterTeam/docs the copy was taken from")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    document = yaml.safe_load(args.document.read_text())
    text = dump(transcribe(document, args.commit))
    json.loads(text)  # what is written must read back
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text):,} bytes, {len(OPERATIONS)} operations)")


if __name__ == "__main__":
    main()
