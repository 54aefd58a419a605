# syntax=docker/dockerfile:1
# The liveness service: model/ and service/ with the `serve` extra (ONNX Runtime, no torch),
# the embedded default model (model/weights/default) baked in.
#
#   docker build -t liveness .                    CPU (the last stage, `runtime`)
#   docker build -t liveness:gpu --target gpu .   CUDA 13 + cuDNN 9, onnxruntime-gpu
#
# Without a container registry: --build-arg PYTHON_IMAGE=localhost/python-base:bookworm, the
# base deploy/base-image.sh makes from Debian's packages (docs/deployment.md). With podman,
# add --format docker: the OCI format drops the HEALTHCHECK.
#
# The Python environment is made by the Makefile's own targets (`make install-serve`,
# `make install-gpu`) into /opt/venv: the image installs exactly what `make serve` installs.
# Only the files named in .dockerignore reach the build.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# CUDA 13.0 + cuDNN 9: what PyPI's onnxruntime-gpu (the `gpu` extra) is built for; the build
# checks the CUDA majors agree. Ubuntu 24.04's python3 is 3.12 (the project needs >= 3.11).
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04

# ---- GPU: build the environment ---------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu-build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile pyproject.toml README.md ./
COPY liveness/ liveness/
COPY model/ model/
COPY service/ service/
COPY scripts/fetch_detector_weights.py scripts/
# The serve extra, then onnxruntime swapped for onnxruntime-gpu (the `gpu` extra): both
# wheels install the same `onnxruntime` module, so one environment holds only one of them.
RUN PIP_NO_CACHE_DIR=1 make install-gpu VENV=/opt/venv EDITABLE=
# A CUDA provider built for another CUDA major would fail to load at run time, and ONNX
# Runtime would then fall back to the CPU: fail the build instead.
RUN /opt/venv/bin/python -c "import os; from onnxruntime.capi import build_and_package_info as b; \
    built, here = b.cuda_version.split('.')[0], os.environ['CUDA_VERSION'].split('.')[0]; \
    assert built == here, f'onnxruntime-gpu is built for CUDA {b.cuda_version}, the image has {os.environ[\"CUDA_VERSION\"]}'"
COPY deploy/slim-venv.sh deploy/
RUN sh deploy/slim-venv.sh /opt/venv

# ---- GPU: runtime -----------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin liveness \
    && mkdir /models /srv/liveness
COPY --from=gpu-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIVENESS_HOST=0.0.0.0 \
    LIVENESS_PORT=8000 \
    LIVENESS_PROVIDERS=cuda
# Other models: mount a model directory under /models and set LIVENESS_MODEL_DIR to it.
VOLUME ["/models"]
# The working directory is empty, owned by root and not writable by the service: a relative
# path anything in the server opens resolves to nothing, and nothing can be left there.
WORKDIR /srv/liveness
USER liveness
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LIVENESS_PORT', '8000'), timeout=3)"]
ENTRYPOINT ["liveness"]
CMD ["serve"]

# ---- CPU: build the environment ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile pyproject.toml README.md ./
COPY liveness/ liveness/
COPY model/ model/
COPY service/ service/
COPY scripts/fetch_detector_weights.py scripts/
# A wheel, not an editable install: model/ and service/ (with model/weights/default and the
# face detector's weights, which the Makefile extracts from the pinned mediapipe wheel and
# checks first, as package data) land in /opt/venv, and /src is left behind with this stage.
RUN PIP_NO_CACHE_DIR=1 make install-serve VENV=/opt/venv EDITABLE=
# pip, setuptools, test suites and C headers out: nothing is installed or compiled at run time.
COPY deploy/slim-venv.sh deploy/
RUN sh deploy/slim-venv.sh /opt/venv

# ---- CPU: runtime (the default target) --------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin liveness \
    && mkdir /models /srv/liveness
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIVENESS_HOST=0.0.0.0 \
    LIVENESS_PORT=8000
# Other models: mount a model directory under /models and set LIVENESS_MODEL_DIR to it.
VOLUME ["/models"]
# The working directory is empty, owned by root and not writable by the service: a relative
# path anything in the server opens resolves to nothing, and nothing can be left there.
WORKDIR /srv/liveness
USER liveness
EXPOSE 8000
# The slim image has no curl: the probe is a Python one-liner.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LIVENESS_PORT', '8000'), timeout=3)"]
ENTRYPOINT ["liveness"]
CMD ["serve"]
