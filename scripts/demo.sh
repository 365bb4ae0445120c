#!/usr/bin/env bash
# Set up a fresh machine and run the main job: the sound-matching demo (SCRAPL with θ-IS vs uniform
# sampling vs the MSS loss vs supervised training), on the CPU by default. Extra arguments go to
# `scrapl demo` (e.g. --quick, --paper, --device cuda, --steps N, --out-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
scrapl demo --out-dir demo_out "$@"
