"""The controller's ConfigMap (``--configmap``): the keys of ingress-nginx's ConfigMap that
kins' renderer honours; the others are named in the log."""

from __future__ import annotations

from dataclasses import replace

from .model import IngressConfig

_BOOL = {"true": True, "false": False}


def configmap_settings(cfg: IngressConfig, data: dict[str, str]) -> tuple[IngressConfig, list[str]]:
    """``cfg`` with the ConfigMap's keys kins honours applied; the keys it ignored (and why)."""
    ignored: list[str] = []
    for key, value in sorted(data.items()):
        if key == "ssl-redirect" and value.lower() in _BOOL:
            cfg = replace(cfg, ssl_redirect=_BOOL[value.lower()])
        elif key == "max-worker-connections" and value.isdigit():
            # 0 is upstream's "as many as the system allows": kins keeps its own default then.
            if int(value) > 0:
                cfg = replace(cfg, worker_connections=int(value))
        elif key in ("ssl-redirect", "max-worker-connections"):
            ignored.append(f"{key} (bad value {value!r})")
        else:
            ignored.append(key)
    return cfg, ignored
