# Shared by scripts/run.sh and scripts/test.sh (sourced, not run).

# apt_install PACKAGE...: install Debian packages as root, through sudo, or say what is missing.
apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && apt-get install -y -q "$@"
  elif command -v sudo >/dev/null; then
    sudo apt-get update -q && sudo apt-get install -y -q "$@"
  else
    echo "warning: please install the Debian packages: $*" >&2
    return 1
  fi
}

# make_venv: create ./.venv with Python 3.11+ (Debian ships venv in a separate package).
make_venv() {
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/pip ]; then
    "$python" -m venv .venv 2>/dev/null || {
      rm -rf .venv
      apt_install "python3-venv" && "$python" -m venv .venv
    }
  fi
}
