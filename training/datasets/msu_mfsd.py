"""MSU-MFSD (Michigan State University Mobile Face Spoofing Database, 2015): 35 clients,
280 clips.

Expected layout (the release; file names as listed in ``bob.db.msu_mfsd_mod``'s
``folds/msu_mfsd_mod_{real,attack}vids.txt``)::

    <root>/scene01/real/real_client001_android_SD_scene01.mp4
    <root>/scene01/real/real_client001_laptop_SD_scene01.mov
    <root>/scene01/attack/attack_client001_android_SD_ipad_video_scene01.mp4
    <root>/scene01/attack/attack_client001_laptop_SD_printed_photo_scene01.mov
    <root>/train_sub_list.txt, <root>/test_sub_list.txt   (optional, see below)

``real/`` and ``attack/`` may also sit directly in ``<root>``. Per client: 2 real
accesses (``laptop`` MacBook Air camera, ``android`` Nexus 5 camera) and 6 attacks
(``printed_photo`` on A3 paper, ``ipad_video`` = HD replay on an iPad Air, ``iphone_video``
= mobile replay on an iPhone 5S), each shot with both cameras.

Subjects: the official protocol puts 15 clients in train and 20 in test, listed in the
release's ``train_sub_list.txt`` / ``test_sub_list.txt`` (two-digit ids, one a line).
Those files are read when present; otherwise the same official lists (as shipped in
``bob.db.msu_mfsd_mod/folds``) are used.

Protocols:

- ``paper`` (default): the official train subjects; the official test subjects are split
  in half into dev and test, as the CNN-LSTM paper does (its §4.2: "no development set
  is contained in MSU-MFSD ... we equally split the testing set"). The split is
  deterministic: sorted test subject ids, every other one from the first goes to dev.
  120 / 80 / 80 clips; 15 / 10 / 10 clients.
- ``official``: train (15 clients, 120 clips) and test (20 clients, 160 clips), no dev.

Option ``camera=laptop|android`` keeps the clips captured by one camera.
"""

from __future__ import annotations

import re
from pathlib import Path

from model.labels import GENUINE, SPOOF
from training.datasets.base import (
    DatasetLayoutError,
    check_choice,
    describe_dir,
    list_videos,
    name_error,
    require_clips,
    require_dir,
)
from training.records import ClipRecord

NAME = "msu-mfsd"
TITLE = "MSU-MFSD"

PROTOCOLS = ("paper", "official")
CAMERAS = ("laptop", "android")
ATTACK_KINDS = ("printed_photo", "ipad_video", "iphone_video")

# The official subject lists (train_sub_list.txt / test_sub_list.txt of the release).
OFFICIAL_TRAIN = (2, 3, 5, 6, 7, 8, 9, 11, 12, 21, 22, 34, 53, 54, 55)
OFFICIAL_TEST = (1, 13, 14, 23, 24, 26, 28, 29, 30, 32, 33, 35, 36, 37, 39, 42, 48, 49, 50, 51)

_NAME = re.compile(
    r"^(?P<kind>real|attack)_client(?P<client>\d+)_(?P<camera>laptop|android)_(?P<quality>[A-Z]+)_"
    r"(?:(?P<attack>printed_photo|ipad_video|iphone_video)_)?(?P<scene>scene\d+)$"
)
_PATTERN = "{real,attack}_client<id>_<laptop|android>_SD_[<attack kind>_]scene01"


def paper_dev_test_subjects(
    test_subjects: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split the official test subjects into (dev, test) halves: sorted ids, alternating.

    Alternating over the sorted ids (rather than first half / second half) spreads the
    recording order evenly over both halves.
    """
    ordered = sorted(test_subjects)
    return tuple(ordered[0::2]), tuple(ordered[1::2])


def read_subject_lists(root: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(train, test) subject ids from the release's lists, or the built-in official ones."""
    train_file, test_file = root / "train_sub_list.txt", root / "test_sub_list.txt"
    if not train_file.exists() and not test_file.exists():
        return OFFICIAL_TRAIN, OFFICIAL_TEST
    if not (train_file.exists() and test_file.exists()):
        raise DatasetLayoutError(
            f"{TITLE}: found only one of train_sub_list.txt / test_sub_list.txt in {root}; "
            "keep both or neither (the official lists are then used)"
        )
    train, test = _read_ids(train_file), _read_ids(test_file)
    both = sorted(set(train) & set(test))
    if both:
        raise DatasetLayoutError(f"{TITLE}: subjects {both} are in both train and test lists")
    return train, test


def _read_ids(path: Path) -> tuple[int, ...]:
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        token = line.strip()
        if not token:
            continue
        if not token.isdigit():
            raise DatasetLayoutError(f"{path}:{number}: expected a subject number, got {token!r}")
        ids.append(int(token))
    return tuple(ids)


def _clip_folders(root: Path) -> list[Path]:
    """Folders holding real/ and attack/: <root>/scene01 in the release, or <root> itself."""
    candidates = [root, *sorted(p for p in root.glob("scene*") if p.is_dir())]
    found = [p for p in candidates if (p / "real").is_dir() and (p / "attack").is_dir()]
    if not found:
        raise DatasetLayoutError(
            f"{root} does not look like {TITLE}: expected scene01/real/ and scene01/attack/ "
            f"(or real/ and attack/) with files like real_client001_android_SD_scene01.mp4. "
            f"Found: {describe_dir(root)}"
        )
    return found


def load_msu_mfsd(
    root: Path | str, protocol: str = "paper", camera: str | None = None
) -> list[ClipRecord]:
    """Clips of one MSU-MFSD protocol, split by subject lists."""
    check_choice(protocol, PROTOCOLS, "protocol", TITLE)
    check_choice(camera, CAMERAS, "camera", TITLE)
    root = require_dir(root, TITLE)
    folders = _clip_folders(root)
    train, test = read_subject_lists(root)
    split_of = {s: "train" for s in train}
    if protocol == "paper":
        dev, test = paper_dev_test_subjects(test)
        split_of.update({s: "dev" for s in dev})
    split_of.update({s: "test" for s in test})

    records = []
    for folder in folders:
        for kind in ("real", "attack"):
            for path in list_videos(folder / kind):
                record = _record(path, kind, split_of, protocol)
                if camera in (None, record.meta["camera"]):
                    records.append(record)
    selection = f"protocol {protocol!r}" + (f", camera={camera}" if camera else "")
    require_clips(records, TITLE, root, selection)
    return records


def _record(path: Path, folder_kind: str, split_of: dict[int, str], protocol: str) -> ClipRecord:
    m = _NAME.match(path.stem)
    if m is None or m["kind"] != folder_kind or (m["attack"] is None) != (m["kind"] == "real"):
        raise name_error(path, TITLE, _PATTERN)
    client = int(m["client"])
    if client not in split_of:
        raise DatasetLayoutError(
            f"{TITLE}: {path.name} belongs to client {client:03d}, which is in neither the "
            "train nor the test subject list"
        )
    return ClipRecord(
        path=path,
        label=GENUINE if m["kind"] == "real" else SPOOF,
        attack=m["attack"],
        subject=f"{NAME}:client{client:03d}",
        split=split_of[client],
        meta={
            "dataset": NAME,
            "protocol": protocol,
            "camera": m["camera"],
            "quality": m["quality"],
            "scene": m["scene"],
        },
    )
