"""The docs page (``/api/v1/docs``): the OpenAPI document as a reference people read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, render_template, request

from vrm_portal.api.openapi import PROBLEM_TYPES, SCOPE_DESCRIPTIONS, ProblemType, document


def render() -> str:
    """``GET /api/v1/docs``: the reference, with examples for this portal's address."""
    doc = document(current_app)
    return render_template(
        "api/docs.html",
        document=doc,
        operations=reference(doc),
        problems=PROBLEM_TYPES,
        scopes=SCOPE_DESCRIPTIONS,
        base_url=request.url_root.rstrip("/"),
        rate_limit=(current_app.config.get("API_RATE_LIMIT") or "").strip(),
        token_ttl=current_app.config["API_TOKEN_TTL_SECONDS"],
    )


@dataclass
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str = ""
    where: str = ""


@dataclass
class ResponseDoc:
    status: str
    description: str
    content_types: list[str]
    schema: str
    problems: list[ProblemType | str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)


@dataclass
class OperationDoc:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    scope: str | None
    parameters: list[FieldDoc]
    body: list[FieldDoc]
    body_schema: str
    responses: list[ResponseDoc]
    curl: str


def _resolve(node: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def type_label(schema: dict[str, Any]) -> str:
    """A short human label for a JSON Schema, e.g. ``string (date-time) or null``."""
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[-1])
    if "anyOf" in schema:
        return " or ".join(type_label(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_label(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_label(schema['additionalProperties'])}"
    details = []
    if "format" in schema:
        details.append(schema["format"])
    if "pattern" in schema:
        details.append(f"pattern {schema['pattern']}")
    if "minimum" in schema and "maximum" in schema:
        details.append(f"{schema['minimum']}-{schema['maximum']}")
    if "maxLength" in schema:
        details.append(f"{schema.get('minLength', 0)}-{schema['maxLength']} characters")
    if "maxProperties" in schema:
        details.append(f"at most {schema['maxProperties']} entries")
    return f"{kind} ({', '.join(details)})" if details else str(kind)


def _fields(schema: dict[str, Any], doc: dict[str, Any], prefix: str = "") -> list[FieldDoc]:
    schema = _resolve(schema, doc)
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        label = type_label(prop)
        rows.append(FieldDoc(prefix + name, label, name in required, prop.get("description", "")))
        nested = [option for option in prop.get("anyOf", [prop]) if "$ref" in option]
        if nested and "properties" in _resolve(nested[0], doc):
            rows.extend(_fields(nested[0], doc, f"{prefix}{name}."))
    return rows


def reference(doc: dict[str, Any]) -> list[OperationDoc]:
    """Each operation of ``doc`` as the docs page lists it."""
    problems = {problem.slug: problem for problem in PROBLEM_TYPES}
    operations = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            parameters = []
            for raw in op.get("parameters", []):
                parameter = _resolve(raw, doc)
                parameters.append(
                    FieldDoc(
                        parameter["name"],
                        type_label(parameter["schema"]),
                        bool(parameter.get("required")),
                        parameter.get("description", ""),
                        parameter["in"],
                    )
                )
            body: list[FieldDoc] = []
            body_schema = ""
            if "requestBody" in op:
                content_type, media = next(iter(op["requestBody"]["content"].items()))
                body_schema = f"{content_type}: {type_label(media['schema'])}"
                body = _fields(media["schema"], doc)
            responses = []
            for status, response in op["responses"].items():
                content = response.get("content", {})
                schema_labels = {type_label(media["schema"]) for media in content.values()}
                responses.append(
                    ResponseDoc(
                        status,
                        response["description"],
                        list(content),
                        " / ".join(sorted(schema_labels)),
                        [problems.get(slug, slug) for slug in response.get("x-problem-types", [])],
                        list(response.get("headers", {})),
                    )
                )
            operations.append(
                OperationDoc(
                    anchor=f"op-{op['operationId']}",
                    method=method.upper(),
                    path=path,
                    summary=op["summary"],
                    description=op["description"],
                    scope=op.get("x-scope"),
                    parameters=parameters,
                    body=body,
                    body_schema=body_schema,
                    responses=responses,
                    curl=op["x-codeSamples"][0]["source"],
                )
            )
    return operations
