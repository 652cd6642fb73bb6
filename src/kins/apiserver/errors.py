"""Errors answered as Kubernetes ``Status`` objects, with reasons and field causes.

Every handler raises ``ApiError``; the server's error middleware turns it into the response.
"""

from __future__ import annotations

from typing import Any

from .._errors import ValidationError
from ..api.resources import Resource


class ApiError(Exception):
    """An error answered as a Kubernetes ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.kind = kind
        self.group = group
        self.name = name
        self.group = group
        self.causes = causes

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if details:
            out["details"] = details
        return out


def cause_reason(message: str) -> str:
    low = message.lower()
    if low.startswith("required"):
        return "FieldValueRequired"
    if low.startswith("unsupported"):
        return "FieldValueNotSupported"
    if low.startswith("duplicate"):
        return "FieldValueDuplicate"
    if low.startswith("forbidden"):
        return "FieldValueForbidden"
    if low.startswith("too many"):
        return "FieldValueTooMany"
    if low.startswith("too long"):
        return "FieldValueTooLong"
    if low.startswith("not found"):
        return "FieldValueNotFound"
    return "FieldValueInvalid"


def invalid(res: Resource, name: str, errors: list[ValidationError]) -> ApiError:
    causes = [{"reason": cause_reason(e.message), "message": e.message, "field": e.field} for e in errors]
    detail = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
    # As the API server words it: the kind qualified by its group (Deployment.apps, Widget.example.com).
    qualified = f"{res.kind}.{res.group}" if res.group else res.kind
    return ApiError(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: {detail}',
        kind=res.kind,
        group=res.group,
        name=name,
        causes=causes,
    )
