"""Every error kins raises. Each one prints as a single clear line for the CLI."""

from __future__ import annotations


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
