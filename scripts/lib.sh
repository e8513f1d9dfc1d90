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

# PyTorch's index of CPU-only wheels (no CUDA packages); CNNLAB_TORCH_CPU_INDEX overrides it.
TORCH_CPU_INDEX="${CNNLAB_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

# torch_build: "cpu" or "cuda", from CNNLAB_TORCH (cpu | cuda | auto, the default: cuda when
# nvidia-smi lists a GPU). Plain `pip install torch` from PyPI is the CUDA build on Linux (19
# NVIDIA/CUDA packages, gigabytes) even without a GPU, so the choice is made here, on purpose.
torch_build() {
  local choice="${CNNLAB_TORCH:-auto}"
  case "$choice" in
    cpu | cuda) echo "$choice" ;;
    auto) if nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then echo cuda; else echo cpu; fi ;;
    *)
      echo "CNNLAB_TORCH=$choice: use cpu, cuda or auto." >&2
      return 1
      ;;
  esac
}

# reachable URL: true when URL answers within 3 s (DNS included), so an index this machine cannot
# reach costs 3 s instead of pip's retries on every package.
reachable() {
  timeout 4 .venv/bin/python -c \
    'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$1" \
    >/dev/null 2>&1
}

# install_requirements FILE [PIP_OPTION...]: pip install FILE into ./.venv with the torch build of
# torch_build (and the given pip options).
# cpu: torch==VERSION+cpu, from PyTorch's CPU index when it answers, else from the indexes pip is
# configured with (a local wheel, a mirror); cuda: torch==VERSION, never the +cpu wheel, from PyPI
# or CNNLAB_TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cu130 for another CUDA).
install_requirements() {
  local file="$1" build version constraints
  shift
  build="$(torch_build)" || return 1
  version="$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' requirements.txt)"
  echo "Installing $file with torch's $build build (CNNLAB_TORCH=${CNNLAB_TORCH:-auto})" >&2
  constraints="$(mktemp)"
  local args=(--constraint "$constraints")
  if [ "$build" = cpu ]; then
    echo "torch==$version+cpu" >"$constraints"
    if [ "$(installed_torch)" != "$version+cpu" ]; then
      if reachable "$TORCH_CPU_INDEX/torch/"; then
        args+=(--extra-index-url "$TORCH_CPU_INDEX" --timeout 30 --retries 2)
      else
        echo "note: $TORCH_CPU_INDEX does not answer; looking for torch $version+cpu in pip's" \
          "configured indexes" >&2
      fi
    fi
  else
    echo "torch!=$version+cpu" >"$constraints"
    if [ -n "${CNNLAB_TORCH_INDEX_URL:-}" ]; then
      args+=(--extra-index-url "$CNNLAB_TORCH_INDEX_URL")
    fi
  fi
  local status=0
  .venv/bin/pip install "${args[@]}" "$@" -r "$file" || status=$?
  rm -f "$constraints"
  if [ "$status" != 0 ] && [ "$build" = cpu ]; then
    echo "No CPU build of torch $version was found: let pip reach $TORCH_CPU_INDEX, or" \
      "choose the CUDA build with CNNLAB_TORCH=cuda." >&2
  fi
  return "$status"
}

# installed_torch: the torch version in ./.venv, or nothing.
installed_torch() {
  .venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null ||
    true
}

# install_cnnlab: `pip install -e .` (no dependencies: install_requirements did them), so `import
# cnnlab` works from any directory; skipped when ./.venv already imports this checkout's cnnlab.
install_cnnlab() {
  local here
  here="$(pwd)"
  if ! (cd / && "$here/.venv/bin/python" -c \
    'import cnnlab, sys; sys.exit(cnnlab.__file__ != sys.argv[1])' "$here/cnnlab/__init__.py") \
    2>/dev/null; then
    .venv/bin/pip install --no-deps -e .
  fi
}
