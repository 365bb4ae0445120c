#!/usr/bin/env bash
# Set up a fresh machine and run every check: lint + format (ruff), types (mypy), and the whole test
# suite with coverage (parity tests against scrapl-loss 0.1.0, doctests of the package, the docs'
# snippets and their strict build included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python tools/fetch_reference.py >/dev/null
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== pytest"
python -m pytest -q -p no:cacheprovider --doctest-modules --import-mode=importlib src/scrapl \
  --cov=scrapl --cov-report=
python -m pytest -q --cov=scrapl --cov-append --cov-report=term --cov-report=xml "$@"
