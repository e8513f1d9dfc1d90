#!/usr/bin/env bash
# Serve CNN Lab to a class on http://<this machine>:8501 (PORT overrides): one app process per
# core (CNNLAB_WEB_PROCESSES) behind Debian's nginx with sticky sessions and security headers,
# sharing one data directory (CNNLAB_DATA_DIR). Runs in the foreground; Ctrl-C stops everything.
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
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
exec .venv/bin/python -m scripts.serving.supervisor
