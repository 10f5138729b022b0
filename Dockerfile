# syntax=docker/dockerfile:1
# The one image of the deployment (the Ray image pattern): Ray head, Ray
# workers, the RayJob submitter and the MLflow tracking server all run it.
#
#   CPU:  docker build -t REGISTRY/sweeper:0.1.0-cpu .
#   GPU:  docker build -t REGISTRY/sweeper:0.1.0-cu130 \
#           --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .
FROM python:3.11-slim

# Which torch 2.13.0 build goes in: the CPU wheel by default, a CUDA wheel for
# GPU images (any index of PyTorch's wheel server: .../whl/cu126, cu128, cu130).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# bash runs KubeRay's generated `ray start` command; wget its probes on older
# Ray versions (2.60 uses HTTP probes, kept for safety; it is small).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash wget \
    && rm -rf /var/lib/apt/lists/*

# Non-root user, uid/gid 1000 like rayproject/ray (the pods' runAsUser).
RUN groupadd --gid 1000 ray \
    && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash ray

# torch first and alone: the project pins 2.13.0, deepspeed looks for torch
# when it builds, and `pip install .` below then finds the pin satisfied
# instead of pulling a different build from PyPI.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"

# The project itself, plus the PostgreSQL driver for the MLflow server's
# backend store. The source tree stays in /app: RayJob entrypoints use paths
# relative to it (search_spaces/...).
WORKDIR /app
COPY --chown=1000:1000 . /app
RUN pip install . "psycopg2-binary==2.9.13" \
    && python -c "import torch, ray, mlflow, psycopg2; print('torch', torch.__version__, 'ray', ray.__version__)"

USER 1000:1000
ENV HOME=/home/ray
EXPOSE 5000 6379 8265 10001
CMD ["sweeper", "--help"]
