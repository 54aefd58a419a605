"""OULU-NPU (University of Oulu and NPU, 2017): 55 users, 6 phones, 3 sessions, 4950 clips.

Expected layout (the release)::

    <root>/Train_files/1_1_01_1.avi   (users 1-20; a .txt of face boxes sits beside each)
    <root>/Dev_files/1_1_21_1.avi     (users 21-35)
    <root>/Test_files/1_1_36_1.avi    (users 36-55)
    <root>/Protocols/Protocol_1/{Train,Dev,Test}.txt
    <root>/Protocols/Protocol_2/{Train,Dev,Test}.txt
    <root>/Protocols/Protocol_3/{Train,Dev,Test}_{1..6}.txt
    <root>/Protocols/Protocol_4/{Train,Dev,Test}_{1..6}.txt

A clip is named ``<phone>_<session>_<user>_<file>``: phone 1-6 (see ``PHONES``), session
1-3 (different illumination and background), user 01-55, file 1 = real access, 2 and 3
= print attacks with printers 1 and 2, 4 and 5 = video replays on displays 1 and 2.
A protocol list has one clip a line, ``<label>,<clip name>``, label ``+1`` for real and
a negative number for an attack.

Protocols (with the lists under ``Protocols/`` when present, else by their rules; the
rules and the lists agree):

- ``1`` unseen environment: train/dev sessions 1-2, test session 3; all phones and files.
- ``2`` unseen attack instruments: train/dev files 1, 2, 4; test files 1, 3, 5.
- ``3`` unseen phone (leave one out, ``phone=k`` picks the fold): train/dev the other five
  phones, test phone k; all sessions and files.
- ``4`` all of the above: train/dev sessions 1-2, phones other than k, files 1, 2, 4;
  test session 3, phone k, files 1, 3, 5.

Users decide the split (1-20 train, 21-35 dev, 36-55 test), so splits are person-disjoint.
Attack kinds: ``print`` and ``replay`` (the two PAI types OULU-NPU reports APCER for); the
instrument (print1/print2/replay1/replay2) is in ``meta["instrument"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from model.labels import GENUINE, SPOOF
from training.datasets.base import (
    DatasetLayoutError,
    ProtocolError,
    check_choice,
    list_videos,
    name_error,
    require_clips,
    require_dir,
    require_layout,
)
from training.records import ClipRecord

NAME = "oulu-npu"
TITLE = "OULU-NPU"

PROTOCOLS = ("1", "2", "3", "4")
FOLDED = ("3", "4")  # protocols with one fold per left-out phone
PHONES = {
    1: "Samsung Galaxy S6 edge",
    2: "HTC Desire EYE",
    3: "MEIZU X5",
    4: "ASUS Zenfone Selfie",
    5: "Sony XPERIA C5 Ultra Dual",
    6: "OPPO N3",
}
SPLIT_FOLDERS = {"train": "Train_files", "dev": "Dev_files", "test": "Test_files"}
LIST_NAMES = {"train": "Train", "dev": "Dev", "test": "Test"}
# file id -> (attack kind or None, instrument)
FILES = {1: (None, "real"), 2: ("print", "print1"), 3: ("print", "print2")}
FILES |= {4: ("replay", "replay1"), 5: ("replay", "replay2")}

_CLIP = re.compile(r"^(?P<phone>[1-6])_(?P<session>[1-3])_(?P<user>\d{2})_(?P<file>[1-5])$")
_PATTERN = "<phone 1-6>_<session 1-3>_<user 01-55>_<file 1-5>.avi"
_EXPECTED = "Train_files/, Dev_files/ and Test_files/ with clips like 1_1_01_1.avi"

_ALL_SESSIONS, _ALL_PHONES, _ALL_FILES = frozenset({1, 2, 3}), frozenset(PHONES), frozenset(FILES)


@dataclass(frozen=True)
class SplitRule:
    """Which sessions, phones and files of a split's users a protocol keeps."""

    sessions: frozenset[int]
    phones: frozenset[int]
    files: frozenset[int]

    def keeps(self, phone: int, session: int, file: int) -> bool:
        return session in self.sessions and phone in self.phones and file in self.files


def protocol_rules(protocol: str, phone: int | None = None) -> dict[str, SplitRule]:
    """The official rule of each split for ``protocol`` (and, for 3 and 4, its fold).

    Train and dev always share a rule; test differs in exactly what the protocol
    holds out: the session (1), the attack instruments (2), the phone (3), or all (4).
    """
    seen_files, unseen_files = frozenset({1, 2, 4}), frozenset({1, 3, 5})
    sessions_12, session_3 = frozenset({1, 2}), frozenset({3})
    others, left_out = _ALL_PHONES - {phone}, frozenset({phone})
    train, test = {
        "1": ((sessions_12, _ALL_PHONES, _ALL_FILES), (session_3, _ALL_PHONES, _ALL_FILES)),
        "2": ((_ALL_SESSIONS, _ALL_PHONES, seen_files), (_ALL_SESSIONS, _ALL_PHONES, unseen_files)),
        "3": ((_ALL_SESSIONS, others, _ALL_FILES), (_ALL_SESSIONS, left_out, _ALL_FILES)),
        "4": ((sessions_12, others, seen_files), (session_3, left_out, unseen_files)),
    }[protocol]
    return {"train": SplitRule(*train), "dev": SplitRule(*train), "test": SplitRule(*test)}


def load_oulu_npu(
    root: Path | str, protocol: str = "1", phone: str | None = None
) -> list[ClipRecord]:
    """Clips of one OULU-NPU protocol (and fold, for protocols 3 and 4)."""
    check_choice(protocol, PROTOCOLS, "protocol", TITLE)
    check_choice(phone, [str(p) for p in PHONES], "phone", TITLE)
    if protocol in FOLDED and phone is None:
        raise ProtocolError(
            f"{TITLE}: protocol {protocol} has one fold per left-out phone; "
            "choose it with phone=1..6"
        )
    if protocol not in FOLDED and phone is not None:
        raise ProtocolError(f"{TITLE}: phone= picks a fold of protocols 3 and 4, not of {protocol}")
    root = require_dir(root, TITLE)
    require_layout(root, SPLIT_FOLDERS.values(), TITLE, _EXPECTED)
    fold = int(phone) if phone is not None else None
    lists = root / "Protocols" / f"Protocol_{protocol}"
    if (root / "Protocols").is_dir():
        records = _from_lists(root, lists, protocol, fold)
    else:
        records = _from_rules(root, protocol, fold)
    selection = f"protocol {protocol}" + (f", phone={phone}" if phone else "")
    require_clips(records, TITLE, root, selection)
    return records


def _from_rules(root: Path, protocol: str, fold: int | None) -> list[ClipRecord]:
    rules = protocol_rules(protocol, fold)
    records = []
    for split, folder in SPLIT_FOLDERS.items():
        for path in list_videos(root / folder):
            m = _CLIP.match(path.stem)
            if m is None:
                raise name_error(path, TITLE, _PATTERN)
            phone, session, file = int(m["phone"]), int(m["session"]), int(m["file"])
            if rules[split].keeps(phone, session, file):
                records.append(_record(path, split, protocol, fold, m))
    return records


def _from_lists(root: Path, lists: Path, protocol: str, fold: int | None) -> list[ClipRecord]:
    records = []
    for split, folder in SPLIT_FOLDERS.items():
        suffix = f"_{fold}" if fold is not None else ""
        list_file = lists / f"{LIST_NAMES[split]}{suffix}.txt"
        if not list_file.is_file():
            raise DatasetLayoutError(
                f"{TITLE}: protocol list {list_file} is missing (Protocols/ is present, so its "
                "lists are used; remove Protocols/ to apply the protocol rules instead)"
            )
        missing = []
        for number, (label, name) in enumerate(_read_list(list_file), start=1):
            m = _CLIP.match(name)
            if m is None:
                raise DatasetLayoutError(
                    f"{list_file}:{number}: {name!r} is not a clip name ({_PATTERN})"
                )
            if (label > 0) != (m["file"] == "1"):
                raise DatasetLayoutError(
                    f"{list_file}:{number}: label {label:+d} contradicts file id {m['file']} of {name} "
                    "(file 1 is the real access, 2-5 are attacks)"
                )
            path = root / folder / f"{name}.avi"
            if path.is_file():
                records.append(_record(path, split, protocol, fold, m))
            else:
                missing.append(path.name)
        if missing:
            raise DatasetLayoutError(
                f"{TITLE}: {len(missing)} clips listed in {list_file.name} are not in "
                f"{root / folder}, e.g. {', '.join(missing[:3])}"
            )
    return records


def _read_list(path: Path) -> list[tuple[int, str]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        label, _, name = line.strip().partition(",")
        try:
            entries.append((int(label), name.strip()))
        except ValueError:
            raise DatasetLayoutError(
                f"{path}:{number}: expected '<label>,<clip name>', got {line!r}"
            ) from None
    return entries


def _record(path: Path, split: str, protocol: str, fold: int | None, m: re.Match) -> ClipRecord:
    phone, file = int(m["phone"]), int(m["file"])
    attack, instrument = FILES[file]
    return ClipRecord(
        path=path,
        label=GENUINE if attack is None else SPOOF,
        attack=attack,
        subject=f"{NAME}:user{m['user']}",
        split=split,
        meta={
            "dataset": NAME,
            "protocol": protocol if fold is None else f"{protocol}_{fold}",
            "phone": phone,
            "phone_model": PHONES[phone],
            "session": int(m["session"]),
            "instrument": instrument,
        },
    )
