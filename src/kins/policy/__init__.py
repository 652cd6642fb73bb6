"""NetworkPolicy tooling around the live cluster: the upstream e2e model (``model``) and real
connections between its pods (``probe``)."""
