"""Watch event types: what a store emits after each commit and what watches deliver."""

from __future__ import annotations

from typing import NamedTuple

from ..api.meta import Object

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


class WatchEvent(NamedTuple):
    type: str  # ADDED | MODIFIED | DELETED
    object: Object
    rv: int
