#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (parity tests against scrapl-loss 0.1.0 included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python tools/fetch_reference.py >/dev/null
python -m pytest -q "$@"
