"""The face detector a served model uses: its manifest's, or an explicit override that
the start-up log warns about and /readyz reports."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from model.manifest import DEFAULT_MODEL_DIR, read_manifest
from service.settings import Settings
from tests.service.support import make_app


def ready(model_dir, **overrides) -> dict:
    with TestClient(make_app(model_dir, **overrides)) as client:
        r = client.get("/readyz")
    assert r.status_code == 200, r.text
    return r.json()["detector"]


def test_the_manifests_detector_is_served_without_an_override(tiny_model_dir, caplog):
    trained = read_manifest(tiny_model_dir).preprocess.crop.detector
    assert trained == "blazeface"  # the default of new models
    with caplog.at_level(logging.WARNING, logger="liveness.service"):
        assert ready(tiny_model_dir) == {
            "name": trained,
            "trained_with": trained,
            "override": False,
        }
    assert "override" not in caplog.text


def test_the_embedded_default_model_is_served_with_its_own_detector():
    trained = read_manifest(DEFAULT_MODEL_DIR).preprocess.crop.detector
    assert trained == "blazeface"  # make default-model trains on BlazeFace crops
    assert ready(DEFAULT_MODEL_DIR) == {"name": trained, "trained_with": trained, "override": False}


def test_an_override_is_warned_about_and_reported(tiny_model_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="liveness.service"):
        got = ready(tiny_model_dir, detector_override="haar")
    assert got == {"name": "haar", "trained_with": "blazeface", "override": True}
    (warning,) = [r for r in caplog.records if "face detector override" in r.getMessage()]
    assert (
        warning.levelno == logging.WARNING and "trained with the blazeface" in warning.getMessage()
    )


def test_an_override_naming_the_trained_detector_is_no_override(tiny_model_dir):
    assert ready(tiny_model_dir, detector_override="blazeface")["override"] is False


def test_an_unknown_override_is_refused():
    with pytest.raises(ValueError, match="detector_override"):
        Settings(detector_override="mtcnn")
