#!/usr/bin/env bash
# Installs everything, then shows the reference cluster's data plane.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
export PATH="$here/.venv/bin:$PATH"
kins render --node node1 --what all
