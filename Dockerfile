# syntax=docker/dockerfile:1
# buster-jobs image: one image, every process (worker, scheduler, dashboard, migrate) by args.
#
#   docker build -t buster-jobs:0.1.0 .                       # all extras (every warehouse, agent, dashboard)
#   docker build --build-arg EXTRAS=postgres,agent,dashboard -t buster-jobs:slim .
#
# tests/k8s/test_entrypoints.py replays the build stage's venv + pip lines in a clean venv and
# starts the processes with the manifests' command lines, so keep those lines plain shell.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# which optional dependencies the image carries (pyproject's [project.optional-dependencies])
ARG EXTRAS=all
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY actors ./actors
COPY connectors ./connectors
COPY agent ./agent
COPY dashboard ./dashboard
# The Makefile's install (upgrade pip, then the project with its extras) into a venv that the
# next stage copies whole; not editable, so the image holds no source tree.
RUN python -m venv /opt/buster \
 && /opt/buster/bin/pip install --upgrade pip \
 && /opt/buster/bin/pip install ".[${EXTRAS}]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# tini: PID 1 that forwards SIGTERM and reaps the worker's child processes.
# libodbc2: unixODBC for pyodbc ([sqlserver]); Microsoft's msodbcsql18 driver is not in
# Debian - add it in a derived image if you use SQL Server (see k8s/README.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libodbc2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 buster \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin buster
COPY --from=build /opt/buster /opt/buster
# Read-only root filesystem in Kubernetes: everything written goes under /tmp (an emptyDir).
ENV PATH=/opt/buster/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BUSTER_DATA_DIR=/tmp/buster \
    BUSTER_HEALTH_DIR=/tmp/buster-health \
    BUSTER_LOG_FORMAT=json
WORKDIR /tmp
# numeric, so Kubernetes' runAsNonRoot can verify it
USER 10001:10001
ENTRYPOINT ["tini", "--", "buster-jobs"]
CMD ["worker", "--queues", "default", "-p", "1", "-t", "8"]
