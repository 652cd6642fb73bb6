"""Every error kins raises. Each one prints as a single clear line for the CLI."""

from __future__ import annotations

import json
from typing import Any


class KinsError(Exception):
    """Base of all kins errors; the CLI prints it and exits non-zero."""

    exit_code = 1


class ValidationError(KinsError):
    """Input that the API server would refuse.

    ``where`` names the object (``Service default/web`` or a file), ``field`` the field path
    (``spec.ports[0].port``).
    """

    def __init__(self, where: str, field: str, message: str) -> None:
        self.where = where
        self.field = field
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        parts = [p for p in (self.where, self.field) if p]
        head = ": ".join(parts)
        return f"{head}: {self.message}" if head else self.message


class MultiValidationError(KinsError):
    """Several validation errors in one input; nothing of it was applied."""

    def __init__(self, errors: list[ValidationError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))


class NotFound(KinsError):
    exit_code = 1


class Conflict(KinsError):
    exit_code = 1


class Gone(KinsError):
    """A watch asked for history older than the store keeps (HTTP 410): relist, then watch again."""


class AllocationError(KinsError):
    """An address or port could not be handed out (taken, outside the range, range full)."""


class KernelError(KinsError):
    """A kernel operation failed: names the operation and the namespace."""

    def __init__(self, op: str, netns: str, detail: str) -> None:
        self.op = op
        self.netns = netns
        self.detail = detail
        super().__init__(f"{op} in {netns or 'host'}: {detail}")


# --- errors the API answers with ---------------------------------------------------------------


class Unauthorized(KinsError):
    """The API refused the token."""


class ApiRequestError(KinsError):
    """Any other error Status the API answered with."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(message)


def error_from_status(status_code: int, body: Any, where: str = "") -> KinsError:
    """The kins error for an error response (a Kubernetes Status, or anything else)."""
    if not isinstance(body, dict) or body.get("kind") != "Status":
        text = body if isinstance(body, str) else json.dumps(body)
        return ApiRequestError(status_code, "", f"HTTP {status_code}: {text}")
    message = str(body.get("message") or "")
    reason = str(body.get("reason") or "")
    code = int(body.get("code") or status_code)
    if code == 404:
        return NotFound(message)
    if code == 409:
        return Conflict(message)
    if code == 410:
        return Gone(message)
    if code == 401:
        return Unauthorized(f"{message}: the API token was refused")
    if code == 422 and reason == "Invalid":
        causes = (body.get("details") or {}).get("causes") or []
        errors = [ValidationError(where, str(c.get("field") or ""), _unprefixed(c, where)) for c in causes]
        return MultiValidationError(errors or [ValidationError(where, "", message)])
    return ApiRequestError(code, reason, message)


def _unprefixed(cause: dict[str, Any], where: str) -> str:
    """A cause's message without the object and field the error already names."""
    msg = str(cause.get("message") or "")
    field = str(cause.get("field") or "")
    for head in (f"{where}: {field}: ", f"{where}: "):
        if where and msg.startswith(head):
            return msg[len(head) :]
    return msg
