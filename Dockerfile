# CNN Lab image: the web app by default; the same image runs a training worker pool with
#   python -m cnnlab.worker --serve   (see deploy/: compose.yaml and k8s/).
# CPU PyTorch by default (no CUDA packages); for a GPU image:
#   docker build --build-arg CNNLAB_TORCH=cuda -t cnnlab:cuda .
# and run it with `docker run --gpus all ...` (PyPI's CUDA torch brings its CUDA libraries; the
# host needs the NVIDIA driver and container toolkit). CNNLAB_TORCH_INDEX_URL picks another CUDA
# build, e.g. https://download.pytorch.org/whl/cu130. Same installer as the scripts (README, Run it).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG CNNLAB_TORCH=cpu
ARG CNNLAB_TORCH_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    CNNLAB_DATA_DIR=/data

# Runs, weights, uploads and data sets: a volume, shared by every web and worker container.
RUN useradd --create-home --uid 10001 cnnlab \
    && install -d -o 10001 -g 10001 /data
VOLUME ["/data"]
WORKDIR /app

# Dependencies first, so a code change does not reinstall torch. Same steps as scripts/run.sh.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY requirements.txt .
COPY scripts/lib.sh scripts/
RUN source scripts/lib.sh && make_venv && install_requirements requirements.txt

COPY --chown=10001:10001 . .
RUN source scripts/lib.sh && install_cnnlab
USER 10001
# Bytecode compiled now: containers may run with a read-only root filesystem.
RUN .venv/bin/python -m compileall -q app.py cnnlab pages scripts ui

EXPOSE 8501
# Healthy once the server answers AND every page has run once (scripts/serving/warmup.py, started beside
# the server, leaves the marker): the first learner does not pay for imports and shared caches.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD [".venv/bin/python", "-c", "import os, urllib.request as u; u.urlopen('http://localhost:8501/_stcore/health', timeout=4); assert os.path.exists('/tmp/cnnlab-warm')"]
CMD ["sh", "-c", "rm -f /tmp/cnnlab-warm; .venv/bin/python -m scripts.serving.warmup --marker /tmp/cnnlab-warm http://127.0.0.1:8501 & exec .venv/bin/python -m scripts.serving.streamlit_nodelay run app.py --server.address=0.0.0.0 --server.port=8501"]
