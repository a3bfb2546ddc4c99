"""Problem details (RFC 9457) for the brand API: one exception, one response shape."""

from __future__ import annotations

from typing import Any

from flask import Response, json

#: Where the problem types are explained (the API's docs page).
TYPE_BASE = "/api/v1/docs#problem-"


class ApiProblem(Exception):
    """Raise to answer with ``application/problem+json``; ``slug`` names the problem type."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> Response:
        response = Response(
            json.dumps(self.body()), status=self.status, mimetype="application/problem+json"
        )
        response.headers.update(self.headers)
        return response


def invalid_parameter(name: str, detail: str) -> ApiProblem:
    return ApiProblem(
        400,
        "invalid-parameter",
        "Invalid parameter",
        detail,
        errors=[{"location": "query", "field": name, "message": detail}],
    )


def not_found(detail: str = "No consumer with this id is known to your brand.") -> ApiProblem:
    """The same answer whether the id is unknown, erased, or another brand's consumer."""
    return ApiProblem(404, "not-found", "Not found", detail)


def unauthorized(detail: str, error: str = "invalid_token") -> ApiProblem:
    return ApiProblem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="vrm-api", error="{error}"'},
    )


def forbidden_scope(scope: str) -> ApiProblem:
    return ApiProblem(
        403,
        "insufficient-scope",
        "Insufficient scope",
        f"This call needs the scope {scope!r}; ask for a token with it (the client must "
        "be allowed that scope).",
        headers={
            "WWW-Authenticate": f'Bearer realm="vrm-api", error="insufficient_scope", '
            f'scope="{scope}"'
        },
    )
