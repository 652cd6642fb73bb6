"""The node agents' pod half: a kubelet for every node of the cluster, split by concern.

``kubelet``: the reconciler (pods bound to nodes started, adopted after a restart, stopped);
``podnet``: pod addresses and the pod's namespace and veth; ``volumes``: the pod's volumes;
``containers``: container start, exits, restarts and probes; ``status``: the pod's status and
the kubelet's Events; ``state``: the records of what runs.
"""

from .kubelet import Kubelet

__all__ = ["Kubelet"]
