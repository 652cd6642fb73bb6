#!/usr/bin/env bash
# Installs everything, brings up the reference article's cluster in network namespaces and shows
# its request flow. The cluster keeps running: explore it with `kins get po -o wide`,
# `kins node exec node1 -- iptables-save`, `kins trace ...`; remove it with `kins down`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
export PATH="$here/.venv/bin:$PATH"
if kins status >/dev/null 2>&1; then
  kins down >/dev/null || true
fi
kins up
echo
echo "The cluster is running. Try:"
echo "  source $here/.venv/bin/activate"
echo "  kins get po -o wide"
echo "  kins node exec node1 -- ip route"
echo "  kins trace business-manager data-product:50051"
echo "  kins get events"
echo "  export KUBECONFIG=\$(kins kubeconfig --path)   # then kubectl, or any Kubernetes client"
echo "  kins down      # removes everything the cluster created"
