"""Cluster DNS: the Kubernetes DNS-Based Service Discovery records of the cluster, served over
UDP and TCP from an index kept current by watching the API."""

from .answer import answer, resolve
from .config import DnsConfig
from .index import DnsIndex, MemoryDnsIndex
from .server import DnsServer, main, serve
from .sources import watch_api, watch_store

__all__ = [
    "DnsConfig",
    "DnsIndex",
    "DnsServer",
    "MemoryDnsIndex",
    "answer",
    "main",
    "resolve",
    "serve",
    "watch_api",
    "watch_store",
]
