#!/usr/bin/env bash
# Set up a fresh machine and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python examples/quickstart.py "$@"
