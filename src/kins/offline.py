"""The offline cluster: manifests + cluster file -> converged state, no root, no daemon."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .api.config import ClusterConfig, load_cluster
from .api.load import load_paths, no_gc
from .api.validation import validate_all
from .control.offline import build_offline_state
from .store.base import Store


@dataclass
class OfflineCluster:
    cfg: ClusterConfig
    store: Store


def open_offline(files: Sequence[str], cluster_file: str | None = None, seed: int = 0) -> OfflineCluster:
    """Load, validate (all or nothing) and converge the objects of ``files``."""
    cfg = load_cluster(cluster_file)
    objs = load_paths(files) if files else []
    with no_gc():
        validate_all(objs, cfg)
        store = build_offline_state(cfg, objs, seed=seed)
    return OfflineCluster(cfg, store)
