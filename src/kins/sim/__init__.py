"""The packet simulator behind ``kins trace``: no root, no kernel, the same answers.

``run_trace(cfg, store, FROM, TO, port=..., proto=..., node=...)`` traces over the rendered
plans; ``ClusterView.from_states`` with ``state_from_ip_json`` traces a live node's dumps.
"""

from .endpoint import Endpoint, resolve_endpoint
from .format import format_trace_text, trace_to_json
from .ipjson import state_from_ip_json
from .packet import Trace
from .state import NodeState, from_plan
from .trace import run_trace, trace, view_of
from .view import ClusterView

__all__ = [
    "ClusterView",
    "Endpoint",
    "NodeState",
    "Trace",
    "format_trace_text",
    "from_plan",
    "resolve_endpoint",
    "run_trace",
    "state_from_ip_json",
    "trace",
    "trace_to_json",
    "view_of",
]
