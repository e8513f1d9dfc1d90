# CNN Lab image. CPU PyTorch by default; for a GPU image build with a CUDA base and wheel index:
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 -t cnnlab:cuda .
# (the base image must provide python3 with venv; run with `docker run --gpus all ...`).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    CNNLAB_DATA_DIR=/home/cnnlab/data

RUN useradd --create-home --uid 10001 cnnlab
WORKDIR /app

# Dependencies first, so a code change does not reinstall torch. Same steps as scripts/run.sh.
COPY requirements.txt .
RUN python3 -m venv .venv \
    && .venv/bin/pip install -r requirements.txt

COPY --chown=10001:10001 . .
USER 10001

EXPOSE 8501
# Healthy once the server answers AND every page has run once (scripts/serving/warmup.py, started beside
# the server, leaves the marker): the first learner does not pay for imports and shared caches.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD [".venv/bin/python", "-c", "import os, urllib.request as u; u.urlopen('http://localhost:8501/_stcore/health', timeout=4); assert os.path.exists('/tmp/cnnlab-warm')"]
CMD ["sh", "-c", "rm -f /tmp/cnnlab-warm; .venv/bin/python -m scripts.serving.warmup --marker /tmp/cnnlab-warm http://127.0.0.1:8501 & exec .venv/bin/python -m scripts.serving.streamlit_nodelay run app.py --server.address=0.0.0.0 --server.port=8501"]
