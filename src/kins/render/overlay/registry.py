"""Overlay backends by the name the cluster file uses in ``podNetwork.backend``."""

from __future__ import annotations

from ...api.config import ClusterConfig
from .base import Overlay
from .vxlan import VXLAN

OVERLAYS: dict[str, Overlay] = {"vxlan": VXLAN()}


def overlay_for(cfg: ClusterConfig) -> Overlay:
    try:
        return OVERLAYS[cfg.podNetwork.backend]
    except KeyError:
        known = ", ".join(sorted(OVERLAYS))
        raise ValueError(f"unknown pod network backend {cfg.podNetwork.backend!r} (known: {known})") from None
