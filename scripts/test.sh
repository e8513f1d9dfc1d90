#!/usr/bin/env bash
# Install CNN Lab and its test tools into ./.venv, make sure Debian's Chromium and nginx are there
# for the browser tests and PostgreSQL for the runs-store tests, then run the whole test suite
# (extra arguments go to pytest). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
make_venv
# Bytecode is compiled when a module is first imported and kept (in __pycache__, git-ignored),
# not by pip for every file it installs: the suite imports a fifth of them, and pip compiles one
# file at a time while the second core idles (setup 62 → 31 s here). So bytecode is written even
# where PYTHONDONTWRITEBYTECODE is set (without it every server, worker and browser-test process
# would compile torch and Streamlit from source again).
unset PYTHONDONTWRITEBYTECODE
install_requirements requirements-dev.txt --no-compile  # torch's build: CNNLAB_TORCH (README)
install_cnnlab
# Compiled once here, by one process, what every server, worker and test process imports (the
# engine, the app's helpers and the test tools): otherwise the first processes of the suite,
# started together, each compile the same files.
.venv/bin/python -W ignore -c 'import importlib, pkgutil, cnnlab, ui
for package in (cnnlab, ui):
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
import hypothesis, playwright.sync_api, streamlit.testing.v1, xdist' 2>/dev/null || true
# Playwright's own browser download does not work everywhere; Debian's Chromium does. Without it
# the browser tests skip locally and fail under CI=true.
[ -x /usr/bin/chromium ] || apt_install chromium || true
# The class-server tests (tests/e2e/test_serve.py) run Debian's nginx in front of the app.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx || true
# The runs-store tests start a throwaway PostgreSQL server (tests/postgres.py).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql || true
# Two pytest-xdist workers (CNNLAB_TEST_WORKERS; 0 = one process): the suite keeps two cores
# busy; three were slower (pytest 411 and 458 s against 403 and 400 s with two, alternating in one
# session) and four too (an older suite: 505 s against 460 s). A file's tests
# stay on one worker (its module-scoped server starts once), and so do all the browser tests on the
# plain test server (tests/conftest.py). Not --dist loadgroup: pytest-xdist
# 3.8 marks a group in item._nodeid, which pytest 9 no longer reads, so groups are ignored.
# --no-loadscope-reorder: hand files out in collection order (tests/conftest.py puts the heavy
# ones first), not by their number of tests.
exec .venv/bin/python -m pytest -n "${CNNLAB_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
