"""The Kubernetes-shaped HTTP API of a live cluster.

This package owns everything the API server does: routing, the generic resource verbs and
watches, discovery and OpenAPI, server-side Tables, the pod subresources (log, exec,
portforward), the bearer token and TLS certificate, and the kubeconfig that points clients at
it. What clients share with it (resource metadata, patch formats) lives in ``kins.api``.
"""
