# syntax=docker/dockerfile:1
# switchman's image (ADR 0032, docs/deployment.md): a build stage installs the package from this repository
# into a virtual environment; the runtime stage copies only that environment onto a slim Python and runs it
# as an unprivileged user. Nothing secret is baked in: tokens, keys and the database URL come from the
# environment at run time.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /build
# The package's metadata names README.md; the sources are the rest (see .dockerignore).
COPY pyproject.toml README.md ./
COPY src ./src
RUN /venv/bin/pip install .

FROM python:${PYTHON_VERSION}-slim AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home --shell /usr/sbin/nologin switchman
COPY --from=build /venv /venv
ENV PATH="/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SWITCHMAN_HOST=0.0.0.0 \
    SWITCHMAN_PORT=4242 \
    SWITCHMAN_LOG_FORMAT=json \
    SWITCHMAN_DATABASE_URL=sqlite:////data/switchman.db
USER switchman
WORKDIR /data
EXPOSE 4242
# GET /health answers 200 {"health": "GOOD"} once the process serves and reaches its database (503 when it
# cannot). A `switchman worker` container serves no HTTP: compose.yaml turns this check off for it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SWITCHMAN_PORT', '4242') + '/health', timeout=2)"]
ENTRYPOINT ["switchman"]
# Pending migrations are applied on start (SWITCHMAN_MIGRATE_ON_START, safe with several replicas starting
# at once: src/switchman/db/migrate.py).
CMD ["serve", "--host", "0.0.0.0"]
