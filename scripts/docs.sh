#!/usr/bin/env bash
# Build the documentation site into site/ with warnings as errors (mkdocs build --strict).
#
#   bash scripts/docs.sh            # redraw the figures (deterministic), build the site
#   DOCS_TIMING=1 bash scripts/docs.sh   # also re-measure the cost table (minutes; machine-dependent)
#   bash scripts/docs.sh serve      # live preview on http://127.0.0.1:8000 instead of a build
#
# Uses .venv when it exists (bash scripts/setup.sh creates it with the docs extra); installs only
# the docs extra, and only when MkDocs is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  . .venv/bin/activate
fi
if ! python -c "import mkdocs, mkdocstrings, material" 2>/dev/null; then
  python -m pip install -q -e ".[docs]"
fi
export NO_MKDOCS_2_WARNING=1 SCRAPL_LOGLEVEL=${SCRAPL_LOGLEVEL:-WARNING}
if [ "${DOCS_TIMING:-0}" = "1" ]; then
  python tools/make_doc_figures.py
else
  python tools/make_doc_figures.py --skip-timing
fi
if [ "${1:-build}" = "serve" ]; then
  exec python -m mkdocs serve
fi
python -m mkdocs build --strict --site-dir site
echo "site built in site/ (open site/index.html)"
