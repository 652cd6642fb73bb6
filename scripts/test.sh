#!/usr/bin/env bash
# Installs everything, then runs the whole test suite (lint, types, unit, kernel and end-to-end tests).
# Kernel and end-to-end tests need root; run this as root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
cd "$here"
export PATH="$here/.venv/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy
pytest -q -p no:cacheprovider "$@"
