# Production image: the service and its models, talking to a real MongoDB through MONGODB_URI.
# The embedded development database (SecantusDB, GPL-2.0) is deliberately not installed here.
FROM python:3.11-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
# The install `make install` does (and CI tests): every package from the hash-pinned lock with --no-deps,
# then the project alone (tests/unit/test_deployment_files.py holds the two to the same steps).
COPY requirements.lock ./
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 kycflow
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH ENVIRONMENT=production DATA_DIR=/var/lib/kycflow PYTHONUNBUFFERED=1
RUN mkdir -p /var/lib/kycflow && chown kycflow /var/lib/kycflow
USER kycflow
EXPOSE 8000
# Readiness (database, models, job workers); the start period covers loading the models in every ML worker.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health/ready', timeout=4)" || exit 1
CMD ["kycflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
