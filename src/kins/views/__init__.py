"""kubectl-style text views of API objects: ``get`` tables, ``describe`` pages and
``-o yaml|json`` output. Pure functions: objects (and the current time) in, text out."""

from .common import human_duration
from .describe import describe_deployment, describe_node, describe_pod, describe_service
from .events import EventRow, events_for, format_events
from .output import dump_yaml, to_json, to_yaml
from .table import NoResources, format_table, no_resources

__all__ = [
    "EventRow",
    "NoResources",
    "describe_deployment",
    "describe_node",
    "describe_pod",
    "describe_service",
    "dump_yaml",
    "events_for",
    "format_events",
    "format_table",
    "human_duration",
    "no_resources",
    "to_json",
    "to_yaml",
]
