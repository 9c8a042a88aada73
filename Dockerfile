# syntax=docker/dockerfile:1.7
#
# One Dockerfile, one target per service:
#
#   docker build --target api       -t payout-api .
#   docker build --target processor -t payout-processor .
#
# The `*-dev` targets (used by the Tiltfile only) make the application source writable by the
# runtime user so that Tilt's live_update can sync into a running container.
#
# Stages: base -> builder -> {api,processor}-build (dependencies from uv.lock, then the source)
#         base -> runtime (non-root user, no build tools) -> api | processor -> *-dev
#
# Offline builds (no package index): the only extra input is a wheelhouse; the build argument
# UV_INSTALL_ARGS is its hook (for uv and for the pip that installs uv), e.g.
# UV_INSTALL_ARGS="--no-index --find-links /wheels" with the wheels made available at /wheels
# (scripts/images-local.sh). The normal online build leaves it empty.

ARG PYTHON_IMAGE=python:3.12-slim

# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app

# --------------------------------------------------------------------------------------------
# uv in its own virtualenv (works on images without a global pip; kept off PATH so that
# `uv venv` picks the image's own python3) plus the workspace metadata.
FROM base AS builder
ARG UV_VERSION=0.13.9
ARG UV_INSTALL_ARGS=""
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_CACHE_DIR=/root/.cache/uv
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir ${UV_INSTALL_ARGS} "uv==${UV_VERSION}"
# Only what `uv export` reads: changes to the source do not invalidate the dependency layers.
COPY pyproject.toml uv.lock ./
COPY libs/payout_core/pyproject.toml libs/payout_core/
COPY services/api/pyproject.toml services/api/
COPY services/processor/pyproject.toml services/processor/

# --------------------------------------------------------------------------------------------
FROM builder AS api-build
ARG UV_INSTALL_ARGS=""
# Third-party dependencies pinned (with hashes) by uv.lock: a cached layer before the source.
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv export --frozen --no-dev --no-emit-workspace --package payout-api \
        --output-file /tmp/requirements.txt \
    && /opt/uv/bin/uv venv /app/.venv \
    && /opt/uv/bin/uv pip install --python /app/.venv/bin/python --require-hashes ${UV_INSTALL_ARGS} \
        --requirement /tmp/requirements.txt
COPY libs/payout_core/src libs/payout_core/src
COPY services/api/src services/api/src
# The workspace members themselves: editable, so the image runs /app/*/src (what Tilt syncs).
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv pip install --python /app/.venv/bin/python --no-deps ${UV_INSTALL_ARGS} \
        --editable libs/payout_core --editable services/api \
    && /app/.venv/bin/python -m compileall -q libs/payout_core/src services/api/src

# --------------------------------------------------------------------------------------------
FROM builder AS processor-build
ARG UV_INSTALL_ARGS=""
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv export --frozen --no-dev --no-emit-workspace --package payout-processor \
        --output-file /tmp/requirements.txt \
    && /opt/uv/bin/uv venv /app/.venv \
    && /opt/uv/bin/uv pip install --python /app/.venv/bin/python --require-hashes ${UV_INSTALL_ARGS} \
        --requirement /tmp/requirements.txt
COPY libs/payout_core/src libs/payout_core/src
COPY services/processor/src services/processor/src
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv pip install --python /app/.venv/bin/python --no-deps ${UV_INSTALL_ARGS} \
        --editable libs/payout_core --editable services/processor \
    && /app/.venv/bin/python -m compileall -q libs/payout_core/src services/processor/src

# --------------------------------------------------------------------------------------------
# Runtime: the slim Python and a numeric non-root user; no uv, no pip cache, no compilers.
FROM base AS runtime
RUN groupadd --system --gid 10001 payout \
    && useradd --system --uid 10001 --gid payout --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin payout
ENV PATH="/app/.venv/bin:${PATH}" \
    LOG_FORMAT=json
USER 10001:10001

# --------------------------------------------------------------------------------------------
FROM runtime AS api
COPY --from=api-build /app/.venv /app/.venv
COPY --from=api-build /app/libs/payout_core /app/libs/payout_core
COPY --from=api-build /app/services/api /app/services/api
ENV API_HOST=0.0.0.0 \
    API_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('API_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["payout-api"]

# --------------------------------------------------------------------------------------------
FROM runtime AS processor
COPY --from=processor-build /app/.venv /app/.venv
COPY --from=processor-build /app/libs/payout_core /app/libs/payout_core
COPY --from=processor-build /app/services/processor /app/services/processor
ENV PROCESSOR_HTTP_PORT=8001
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PROCESSOR_HTTP_PORT', '8001'), timeout=4)"]
ENTRYPOINT ["payout-processor"]

# --------------------------------------------------------------------------------------------
# Development only (Tiltfile): /app and the source owned by the runtime user, for live_update.
FROM api AS api-dev
USER 0:0
RUN chown 10001:10001 /app \
    && chown -R 10001:10001 /app/libs /app/services
USER 10001:10001

FROM processor AS processor-dev
USER 0:0
RUN chown 10001:10001 /app \
    && chown -R 10001:10001 /app/libs /app/services
USER 10001:10001
