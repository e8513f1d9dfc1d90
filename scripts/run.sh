#!/usr/bin/env bash
# Install CNN Lab into ./.venv and serve it on http://localhost:8501 (PORT overrides).
# Safe to run again: the virtual environment is reused and pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
make_venv
install_requirements requirements.txt  # torch's CPU or CUDA build: CNNLAB_TORCH (README)
install_cnnlab
# Data kept in the checkout's ./data by earlier versions moves to the data directory
# (cnnlab/datadir.py), unless CNNLAB_DATA_DIR names one.
.venv/bin/python -m cnnlab.datadir --migrate-from data >/dev/null
port="${PORT:-8501}"
# Run every page once as soon as the server answers, so the learner's first visit of a page does
# not pay for its imports and shared caches (scripts/serving/warmup.py; it ends by itself).
.venv/bin/python -m scripts.serving.warmup --timeout 120 "http://127.0.0.1:$port" >/dev/null 2>&1 &
# Streamlit with TCP_NODELAY on its connections (scripts/serving/streamlit_nodelay.py: ~40 ms per rerun).
exec .venv/bin/python -m scripts.serving.streamlit_nodelay run app.py --server.port "$port"
