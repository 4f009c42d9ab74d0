# civicrisk scoring service: `docker build -t civicrisk . && docker run -p 8000:8000 -e CIVICRISK_API_KEYS=... civicrisk`
# Python 3.11 because a bundle records the Python minor version it was trained with.

# Build stage: the civicrisk wheel, so the service stage installs the package, not a source tree.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
COPY civicrisk ./civicrisk
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CIVICRISK_HOST=0.0.0.0 \
    CIVICRISK_PORT=8000 \
    CIVICRISK_MODELS_DIR=/srv/civicrisk/models \
    CIVICRISK_DATA_DIR=/srv/civicrisk/data/sample

WORKDIR /srv/civicrisk

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt uvloop httptools \
    && rm /tmp/requirements.txt

# The code (the wheel built above), the committed (verified) bundle and the sample city data for
# the establishment endpoint.
COPY --from=build /wheels /tmp/wheels
COPY models ./models
COPY data/sample ./data/sample
RUN pip install --no-deps /tmp/wheels/*.whl \
    && rm -r /tmp/wheels \
    && useradd --system --uid 10001 --no-create-home civicrisk

# Read-only for the service user: bundles are evidence and must not change under it.
USER civicrisk
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"

ENTRYPOINT ["civicrisk", "serve"]
