"""Replay-Attack (Idiap Research Institute, 2012): 50 clients, 1200 clips (+ enrolment).

Expected layout (the release as distributed; the layout ``bob.db.replay`` reads)::

    <root>/train/real/client001_session01_webcam_authenticate_adverse_1.mov
    <root>/train/attack/fixed/attack_highdef_client001_session01_highdef_photo_adverse.mov
    <root>/train/attack/hand/attack_print_client001_session01_highdef_photo_controlled.mov
    <root>/devel/...   <root>/test/...   (same sub-folders)
    <root>/enroll/..., <root>/face-locations/...   (present in the release, not used here)

File-name fields, as ``bob.db.replay``'s ``create.py`` parses them:

- real: ``client<id>_session<nn>_webcam_authenticate_<light>_<take>`` where light is
  ``controlled`` (uniform background, lights on) or ``adverse`` (non-uniform background,
  daylight only) and take is 1 or 2;
- attack: ``attack_<device>_client<id>_session<nn>_<sample device>_<sample type>_<light>``
  where device is ``print`` (hard copy), ``mobile`` (iPhone screen) or ``highdef`` (iPad
  screen), the sample was shot with a ``mobile`` or ``highdef`` camera as a ``photo`` or a
  ``video``, and the parent folder gives the support: ``fixed`` or ``hand``.

The split is the folder: 15 clients in train, 15 in devel (split "dev"), 20 in test, so
the splits are person-disjoint. Per client there are 4 real accesses and 20 attacks:
360 / 360 / 480 clips in train / dev / test.

Protocols (``bob.db.replay``'s names; real accesses are in every one):

- ``grandtest``: every attack;
- ``print``, ``mobile``, ``highdef``: attacks of that device;
- ``photo``, ``video``: attacks whose sample is a photo (print included) or a video;
- ``digitalphoto``: photos shown on a screen (mobile or highdef, photo);
- ``controlled``, ``adverse``: grandtest under one lighting (the paper's Table 1 and its
  adverse -> controlled cross test);
- ``fixed``, ``hand``: grandtest with attacks of one support only.

Options ``light=controlled|adverse`` (real and attack clips) and ``support=fixed|hand``
(attack clips; real accesses have no support, as in ``bob.db.replay``) narrow any protocol.

Attack kinds (the ``attack`` field): ``print``, ``mobile_photo``, ``mobile_video``,
``highdef_photo``, ``highdef_video``.
"""

from __future__ import annotations

import re
from pathlib import Path

from model.labels import GENUINE, SPOOF
from training.datasets.base import (
    check_choice,
    list_videos,
    name_error,
    require_clips,
    require_dir,
    require_layout,
    resolve_filters,
)
from training.records import ClipRecord

NAME = "replay-attack"
TITLE = "Replay-Attack"

SPLIT_FOLDERS = {"train": "train", "devel": "dev", "test": "test"}  # folder -> split
LIGHTS = ("controlled", "adverse")
SUPPORTS = ("fixed", "hand")

# protocol -> (attack devices, sample types) it keeps; every real access is kept.
_ALL_DEVICES = frozenset({"print", "mobile", "highdef"})
_ALL_TYPES = frozenset({"photo", "video"})
ATTACK_SUBSETS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "grandtest": (_ALL_DEVICES, _ALL_TYPES),
    "print": (frozenset({"print"}), _ALL_TYPES),
    "mobile": (frozenset({"mobile"}), _ALL_TYPES),
    "highdef": (frozenset({"highdef"}), _ALL_TYPES),
    "photo": (_ALL_DEVICES, frozenset({"photo"})),
    "video": (_ALL_DEVICES, frozenset({"video"})),
    "digitalphoto": (frozenset({"mobile", "highdef"}), frozenset({"photo"})),
}
# Protocols that are grandtest with one condition fixed.
PRESETS: dict[str, dict[str, str]] = {
    "controlled": {"light": "controlled"},
    "adverse": {"light": "adverse"},
    "fixed": {"support": "fixed"},
    "hand": {"support": "hand"},
}
PROTOCOLS = (*ATTACK_SUBSETS, *PRESETS)

_REAL = re.compile(
    r"^client(?P<client>\d+)_(?P<session>session\d+)_webcam_authenticate_"
    r"(?P<light>controlled|adverse)_(?P<take>\d+)$"
)
_ATTACK = re.compile(
    r"^attack_(?P<device>print|mobile|highdef)_client(?P<client>\d+)_(?P<session>session\d+)_"
    r"(?P<sample_device>mobile|highdef)_(?P<sample_type>photo|video)_(?P<light>controlled|adverse)$"
)
_EXPECTED = (
    "train/, devel/ and test/, each holding real/ and attack/fixed/ + attack/hand/ "
    "(the Replay-Attack release)"
)


def attack_kind(device: str, sample_type: str) -> str:
    """The attack kind of an attack clip: 'print' or '<screen>_<photo|video>'."""
    return "print" if device == "print" else f"{device}_{sample_type}"


def load_replay_attack(
    root: Path | str,
    protocol: str = "grandtest",
    light: str | None = None,
    support: str | None = None,
) -> list[ClipRecord]:
    """Clips of one Replay-Attack protocol, split by the release's folders."""
    check_choice(protocol, PROTOCOLS, "protocol", TITLE)
    check_choice(light, LIGHTS, "light", TITLE)
    check_choice(support, SUPPORTS, "support", TITLE)
    root = require_dir(root, TITLE)
    require_layout(
        root,
        [f"{folder}/{sub}" for folder in SPLIT_FOLDERS for sub in ("real", "attack")],
        TITLE,
        _EXPECTED,
    )
    filters = resolve_filters(
        protocol, PRESETS.get(protocol, {}), {"light": light, "support": support}, TITLE
    )
    devices, sample_types = ATTACK_SUBSETS.get(protocol, ATTACK_SUBSETS["grandtest"])
    records = []
    for folder, split in SPLIT_FOLDERS.items():
        for record in _real_clips(root / folder / "real", split, protocol):
            if filters["light"] in (None, record.meta["light"]):
                records.append(record)
        for record in _attack_clips(root / folder / "attack", split, protocol):
            m = record.meta
            if (
                m["attack_device"] in devices
                and m["sample_type"] in sample_types
                and filters["light"] in (None, m["light"])
                and filters["support"] in (None, m["support"])
            ):
                records.append(record)
    require_clips(records, TITLE, root, _selection(protocol, filters))
    return records


def _selection(protocol: str, filters: dict[str, str | None]) -> str:
    extra = "".join(f", {k}={v}" for k, v in filters.items() if v is not None)
    return f"protocol {protocol!r}{extra}"


def _subject(client: str) -> str:
    return f"{NAME}:client{int(client):03d}"


def _real_clips(folder: Path, split: str, protocol: str) -> list[ClipRecord]:
    out = []
    for path in list_videos(folder):
        m = _REAL.match(path.stem)
        if m is None:
            raise name_error(
                path, TITLE, "client<id>_session<nn>_webcam_authenticate_<light>_<take>"
            )
        out.append(
            ClipRecord(
                path=path,
                label=GENUINE,
                subject=_subject(m["client"]),
                split=split,
                meta={
                    "dataset": NAME,
                    "protocol": protocol,
                    "light": m["light"],
                    "session": m["session"],
                    "take": int(m["take"]),
                },
            )
        )
    return out


def _attack_clips(folder: Path, split: str, protocol: str) -> list[ClipRecord]:
    out = []
    for path in list_videos(folder, recursive=True):
        support = path.parent.name
        if path.parent.parent != folder or support not in SUPPORTS:
            raise name_error(path, TITLE, "attack/{fixed,hand}/attack_<device>_client<id>_...")
        m = _ATTACK.match(path.stem)
        if m is None:
            raise name_error(
                path,
                TITLE,
                "attack_<device>_client<id>_session<nn>_<sample device>_<photo|video>_<light>",
            )
        out.append(
            ClipRecord(
                path=path,
                label=SPOOF,
                attack=attack_kind(m["device"], m["sample_type"]),
                subject=_subject(m["client"]),
                split=split,
                meta={
                    "dataset": NAME,
                    "protocol": protocol,
                    "light": m["light"],
                    "session": m["session"],
                    "support": support,
                    "attack_device": m["device"],
                    "sample_device": m["sample_device"],
                    "sample_type": m["sample_type"],
                },
            )
        )
    return out
