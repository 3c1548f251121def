# One image for the api, worker and migrate services.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    # Pillow's JPEG decode is allocator-bound in fresh processes (engineering notes).
    MALLOC_MMAP_THRESHOLD_=268435456

WORKDIR /app
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

# Torch first, pinned: the CPU wheel index keeps the image small; GPU hosts can build with
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu121.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url ${TORCH_INDEX} "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY roisearch ./roisearch
COPY demo ./demo
COPY migrations ./migrations
RUN pip install .

RUN useradd --create-home --uid 10001 roisearch && mkdir -p /data && chown roisearch /data
USER roisearch
ENV ROISEARCH_DATA_DIR=/data
EXPOSE 8000
CMD ["roisearch", "serve", "--host", "0.0.0.0"]
