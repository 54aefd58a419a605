"""CASIA-FASD (CASIA Face Anti-Spoofing Database, 2012): 50 subjects, 600 clips.

Expected layout (the release)::

    <root>/train_release/<1..20>/{1..8,HR_1..HR_4}.avi
    <root>/test_release/<1..30>/{1..8,HR_1..HR_4}.avi

Clip names, by ``bob.db.casia_fasd``'s mapping (its ``db_mappings``):

    =========  ======  =====  ======  =====
    quality    real    warped cut     video
    =========  ======  =====  ======  =====
    normal     1       3      5       7
    low        2       4      6       8
    high       HR_1    HR_2   HR_3    HR_4
    =========  ======  =====  ======  =====

``warped`` is a printed photo bent in front of the camera, ``cut`` a printed photo with
the eyes cut out (a live blink behind it), ``video`` a replay on an iPad.

The release has train (subjects 1-20) and test (folders 1-30 = subjects 21-50), no dev.
Dev is taken from the train subjects as ``bob.pad.face``'s CASIA-FASD ``grandtest`` does:
subjects 1-15 train, 16-20 dev (deterministic, person-disjoint). Train / dev / test:
180 / 60 / 360 clips.

Protocols (the seven test scenarios of the CASIA-FASD paper; genuine clips of the
selected qualities are in each):

- ``overall`` (default): every clip;
- ``low``, ``normal``, ``high``: the clips of one quality;
- ``warped``, ``cut``, ``video``: genuine clips and one attack kind, all qualities.

Option ``quality=low|normal|high`` narrows any protocol. Attack kinds (the ``attack``
field): ``warped_print``, ``cut_print``, ``video_replay``.
"""

from __future__ import annotations

from pathlib import Path

from model.labels import GENUINE, SPOOF
from training.datasets.base import (
    DatasetLayoutError,
    check_choice,
    list_videos,
    name_error,
    require_clips,
    require_dir,
    require_layout,
    resolve_filters,
)
from training.records import ClipRecord

NAME = "casia-fasd"
TITLE = "CASIA-FASD"

QUALITIES = ("low", "normal", "high")
ATTACK_KINDS = {"warped": "warped_print", "cut": "cut_print", "video": "video_replay"}
# clip name -> (attack type or None for real, quality)
CLIP_CODES: dict[str, tuple[str | None, str]] = {
    "1": (None, "normal"),
    "2": (None, "low"),
    "HR_1": (None, "high"),
    "3": ("warped", "normal"),
    "4": ("warped", "low"),
    "HR_2": ("warped", "high"),
    "5": ("cut", "normal"),
    "6": ("cut", "low"),
    "HR_3": ("cut", "high"),
    "7": ("video", "normal"),
    "8": ("video", "low"),
    "HR_4": ("video", "high"),
}
TRAIN_SUBJECTS = 20  # train_release holds subjects 1-20; test_release/<n> is subject 20 + n
DEV_SUBJECTS = range(16, 21)  # the last five train subjects form dev (bob.pad.face grandtest)
PROTOCOLS = ("overall", "low", "normal", "high", "warped", "cut", "video")

_EXPECTED = (
    "train_release/ and test_release/ with one folder per subject holding 1.avi ... HR_4.avi"
)


def load_casia_fasd(
    root: Path | str, protocol: str = "overall", quality: str | None = None
) -> list[ClipRecord]:
    """Clips of one CASIA-FASD protocol, with dev taken from the train subjects."""
    check_choice(protocol, PROTOCOLS, "protocol", TITLE)
    check_choice(quality, QUALITIES, "quality", TITLE)
    root = require_dir(root, TITLE)
    require_layout(root, ("train_release", "test_release"), TITLE, _EXPECTED)
    preset = {"quality": protocol} if protocol in QUALITIES else {}
    quality = resolve_filters(protocol, preset, {"quality": quality}, TITLE)["quality"]
    kept_attack = protocol if protocol in ATTACK_KINDS else None

    records = []
    for release in ("train_release", "test_release"):
        for path in list_videos(root / release, recursive=True):
            record = _record(root / release, path, protocol)
            attack_type = record.meta["attack_type"]
            if quality in (None, record.meta["quality"]) and (
                kept_attack is None or attack_type in (None, kept_attack)
            ):
                records.append(record)
    selection = f"protocol {protocol!r}" + (f", quality={quality}" if quality else "")
    require_clips(records, TITLE, root, selection)
    return records


def _record(release: Path, path: Path, protocol: str) -> ClipRecord:
    folder = path.parent
    if folder.parent != release or not folder.name.isdigit() or path.stem not in CLIP_CODES:
        raise name_error(path, TITLE, f"{release.name}/<subject number>/<1..8 or HR_1..HR_4>.avi")
    number = int(folder.name)
    is_train = release.name == "train_release"
    if not 1 <= number <= (TRAIN_SUBJECTS if is_train else 30):
        raise DatasetLayoutError(
            f"{TITLE}: {folder} is not a subject folder of {release.name} "
            f"(1-{TRAIN_SUBJECTS if is_train else 30})"
        )
    subject = number if is_train else TRAIN_SUBJECTS + number
    split = "test" if not is_train else ("dev" if subject in DEV_SUBJECTS else "train")
    attack_type, quality = CLIP_CODES[path.stem]
    return ClipRecord(
        path=path,
        label=GENUINE if attack_type is None else SPOOF,
        attack=ATTACK_KINDS.get(attack_type) if attack_type else None,
        subject=f"{NAME}:subject{subject:02d}",
        split=split,
        meta={
            "dataset": NAME,
            "protocol": protocol,
            "quality": quality,
            "attack_type": attack_type,
            "code": path.stem,
        },
    )
