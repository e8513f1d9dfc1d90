#!/usr/bin/env bash
# Install CNN Lab into ./.venv and serve it on http://localhost:8501 (PORT overrides).
# Safe to run again: the virtual environment is reused and pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
make_venv
.venv/bin/pip install -r requirements.txt
exec .venv/bin/streamlit run app.py --server.port "${PORT:-8501}"
