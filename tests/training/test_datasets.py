"""Data set adapters on fabricated trees that follow each release's real file names.

Trees are complete (every clip of the release, as empty files), so each protocol's
official split sizes can be asserted exactly. Clip contents matter only to the decode
check, which gets real tiny videos.
"""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from model.video import write_clip
from training.datasets import (
    DatasetLayoutError,
    ProtocolError,
    UnknownDatasetError,
    cross_dataset,
    list_datasets,
    load_dataset,
    parse_spec,
)
from training.datasets.check import unreadable_clips
from training.datasets.msu_mfsd import OFFICIAL_TEST, OFFICIAL_TRAIN
from training.records import ClipRecord, write_index

# Replay-Attack client split (the release's train/devel/test folders).
RA_CLIENTS = {
    "train": [1, 2, 4, 6, 7, 8, 12, 16, 18, 25, 27, 103, 105, 108, 110],
    "devel": [3, 5, 10, 15, 17, 22, 29, 30, 101, 111, 113, 114, 116, 118, 119],
    "test": [9, 11, 13, 14, 19, 20, 21, 23, 24, 26, 28, 31]
    + [102, 104, 106, 107, 109, 112, 115, 117],
}
# (attack device, sample device, sample type): 5 attacks x 2 supports x 2 lights per client
RA_ATTACKS = [
    ("print", "highdef", "photo"),
    ("mobile", "mobile", "photo"),
    ("mobile", "mobile", "video"),
    ("highdef", "highdef", "photo"),
    ("highdef", "highdef", "video"),
]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def per_split(records: list[ClipRecord]) -> dict[str, int]:
    return dict(Counter(r.split for r in records))


def subjects(records: list[ClipRecord], split: str) -> set[str]:
    return {r.subject for r in records if r.split == split}


def assert_person_disjoint(records: list[ClipRecord]) -> None:
    splits = [subjects(records, s) for s in ("train", "dev", "test")]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])


@pytest.fixture(scope="module")
def replay_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replayattack")
    for folder, clients in RA_CLIENTS.items():
        for c in clients:
            for light in ("controlled", "adverse"):
                for take in (1, 2):
                    name = f"client{c:03d}_session01_webcam_authenticate_{light}_{take}.mov"
                    touch(root / folder / "real" / name)
                for support in ("fixed", "hand"):
                    for device, sample_device, sample_type in RA_ATTACKS:
                        name = f"attack_{device}_client{c:03d}_session01_{sample_device}_{sample_type}_{light}.mov"
                        touch(root / folder / "attack" / support / name)
            # Enrolment clips and face boxes ship with the release; no protocol uses them.
            touch(
                root / "enroll" / folder / f"client{c:03d}_session01_webcam_enroll_controlled.mov"
            )
            touch(root / "face-locations" / folder / "real" / f"client{c:03d}.face")
    return root


def test_replay_attack_grandtest_follows_the_release_split(replay_root):
    records = load_dataset(f"replay-attack:{replay_root}")
    assert per_split(records) == {"train": 360, "dev": 360, "test": 480}
    genuine = [r for r in records if r.is_genuine]
    assert per_split(genuine) == {"train": 60, "dev": 60, "test": 80}
    for folder, split in (("train", "train"), ("devel", "dev"), ("test", "test")):
        assert subjects(records, split) == {
            f"replay-attack:client{c:03d}" for c in RA_CLIENTS[folder]
        }
    assert_person_disjoint(records)
    kinds = Counter(r.attack for r in records if not r.is_genuine)
    assert kinds == {
        k: 200 for k in ("print", "mobile_photo", "mobile_video", "highdef_photo", "highdef_video")
    }
    assert not any("enroll" in r.path.parts for r in records)


@pytest.mark.parametrize(
    ("protocol", "attacks"),
    [
        ("print", 200),
        ("mobile", 400),
        ("highdef", 400),
        ("photo", 600),
        ("video", 400),
        ("digitalphoto", 400),
    ],
)
def test_replay_attack_attack_protocols_match_bob_counts(replay_root, protocol, attacks):
    records = load_dataset(f"replay-attack:{replay_root}?protocol={protocol}")
    spoof = [r for r in records if not r.is_genuine]
    assert len(spoof) == attacks and len(records) - attacks == 200  # every real access stays
    # bob.db.replay's own check: 30% / 30% / 40% of each protocol's attacks per split
    assert per_split(spoof) == {
        "train": attacks * 3 // 10,
        "dev": attacks * 3 // 10,
        "test": attacks * 4 // 10,
    }


def test_replay_attack_lighting_and_support_subsets(replay_root):
    controlled = load_dataset(f"replay-attack:{replay_root}?protocol=controlled")
    assert per_split(controlled) == {"train": 180, "dev": 180, "test": 240}
    assert {r.meta["light"] for r in controlled} == {"controlled"}
    hand = load_dataset(f"replay-attack:{replay_root}?protocol=hand")
    assert {r.meta["support"] for r in hand if not r.is_genuine} == {"hand"}
    assert Counter(r.label for r in hand) == {"genuine": 200, "spoof": 500}
    both = load_dataset(f"replay-attack:{replay_root}?light=adverse&support=fixed")
    assert Counter(r.label for r in both) == {"genuine": 100, "spoof": 250}
    with pytest.raises(ProtocolError, match="fixes light=controlled"):
        load_dataset(f"replay-attack:{replay_root}?protocol=controlled&light=adverse")


def test_replay_attack_parses_file_name_fields(replay_root):
    records = load_dataset(f"replay:{replay_root}?protocol=video&support=hand")
    clip = next(
        r
        for r in records
        if r.path.name == "attack_mobile_client003_session01_mobile_video_adverse.mov"
    )
    assert (clip.label, clip.attack, clip.subject, clip.split) == (
        "spoof",
        "mobile_video",
        "replay-attack:client003",
        "dev",
    )
    assert clip.meta == clip.meta | {
        "light": "adverse",
        "support": "hand",
        "attack_device": "mobile",
        "protocol": "video",
    }
    real = next(r for r in records if r.path.name.endswith("controlled_2.mov"))
    assert (real.attack, real.meta["take"], real.meta["light"]) == (None, 2, "controlled")


def test_replay_attack_refuses_other_trees_and_foreign_names(tmp_path, replay_root):
    touch(tmp_path / "msu" / "scene01" / "real" / "real_client001_android_SD_scene01.mp4")
    with pytest.raises(
        DatasetLayoutError, match=r"does not look like Replay-Attack.*devel/.*Found: scene01/"
    ):
        load_dataset(f"replay-attack:{tmp_path / 'msu'}")
    for folder in ("train", "devel", "test"):
        for sub in ("real", "attack/fixed"):
            (tmp_path / "ra" / folder / sub).mkdir(parents=True)
    touch(tmp_path / "ra" / "train" / "real" / "client001_webcam.mov")
    with pytest.raises(DatasetLayoutError, match="client001_webcam.mov"):
        load_dataset(f"replay-attack:{tmp_path / 'ra'}")


@pytest.fixture(scope="module")
def msu_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("msu")
    for c in OFFICIAL_TRAIN + OFFICIAL_TEST:
        for camera, ext in (("android", "mp4"), ("laptop", "mov")):
            touch(root / "scene01" / "real" / f"real_client{c:03d}_{camera}_SD_scene01.{ext}")
            for kind in ("ipad_video", "iphone_video", "printed_photo"):
                touch(
                    root
                    / "scene01"
                    / "attack"
                    / f"attack_client{c:03d}_{camera}_SD_{kind}_scene01.{ext}"
                )
    return root


def msu_ids(records: list[ClipRecord], split: str) -> set[int]:
    return {int(s.removeprefix("msu-mfsd:client")) for s in subjects(records, split)}


def test_msu_official_protocol_has_the_release_subject_lists(msu_root):
    records = load_dataset(f"msu-mfsd:{msu_root}?protocol=official")
    assert per_split(records) == {"train": 120, "test": 160}
    assert msu_ids(records, "train") == set(OFFICIAL_TRAIN) and len(OFFICIAL_TRAIN) == 15
    assert msu_ids(records, "test") == set(OFFICIAL_TEST) and len(OFFICIAL_TEST) == 20
    assert Counter(r.attack for r in records) == {
        None: 70,
        "ipad_video": 70,
        "iphone_video": 70,
        "printed_photo": 70,
    }


def test_msu_paper_protocol_halves_the_test_subjects_into_dev(msu_root):
    records = load_dataset(f"msu:{msu_root}")  # "paper" is the default
    assert per_split(records) == {"train": 120, "dev": 80, "test": 80}
    dev, test = msu_ids(records, "dev"), msu_ids(records, "test")
    assert dev == {1, 14, 24, 28, 30, 33, 36, 39, 48, 50}
    assert dev | test == set(OFFICIAL_TEST) and len(test) == 10
    assert_person_disjoint(records)
    assert records == load_dataset(f"msu-mfsd:{msu_root}?protocol=paper")  # deterministic
    laptop = load_dataset(f"msu-mfsd:{msu_root}?camera=laptop")
    assert len(laptop) == 140 and all(r.path.suffix == ".mov" for r in laptop)


def test_msu_reads_the_release_subject_lists_when_present(tmp_path):
    for c in (1, 2, 3):
        touch(tmp_path / "real" / f"real_client{c:03d}_android_SD_scene01.mp4")
        touch(tmp_path / "attack" / f"attack_client{c:03d}_android_SD_printed_photo_scene01.mp4")
    (tmp_path / "train_sub_list.txt").write_text("01\n")
    with pytest.raises(DatasetLayoutError, match="only one of"):
        load_dataset(f"msu-mfsd:{tmp_path}")
    (tmp_path / "test_sub_list.txt").write_text("02\n03\n")
    records = load_dataset(f"msu-mfsd:{tmp_path}?protocol=official")
    assert msu_ids(records, "train") == {1} and msu_ids(records, "test") == {2, 3}
    (tmp_path / "test_sub_list.txt").write_text("02\n")
    with pytest.raises(DatasetLayoutError, match="client 003"):
        load_dataset(f"msu-mfsd:{tmp_path}")


OULU_SPLITS = {
    "train": ("Train", range(1, 21)),
    "dev": ("Dev", range(21, 36)),
    "test": ("Test", range(36, 56)),
}


@pytest.fixture(scope="module")
def oulu_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("oulu")
    for name, users in OULU_SPLITS.values():
        for phone in range(1, 7):
            for session in (1, 2, 3):
                for user in users:
                    for file in range(1, 6):
                        touch(root / f"{name}_files" / f"{phone}_{session}_{user:02d}_{file}.avi")
                        touch(root / f"{name}_files" / f"{phone}_{session}_{user:02d}_{file}.txt")
    return root


def oulu_kept(
    protocol: int, fold: int | None, split: str, phone: int, session: int, file: int
) -> bool:
    """The protocols written out plainly, independently of the adapter's rule table."""
    test = split == "test"
    if protocol == 1:
        return session == 3 if test else session in (1, 2)
    if protocol == 2:
        return file in ((1, 3, 5) if test else (1, 2, 4))
    if protocol == 3:
        return phone == fold if test else phone != fold
    if test:
        return session == 3 and phone == fold and file in (1, 3, 5)
    return session in (1, 2) and phone != fold and file in (1, 2, 4)


@pytest.mark.parametrize(
    ("protocol", "fold", "sizes"),
    [(1, None, (1200, 900, 600)), (2, None, (1080, 810, 1080))]
    + [(3, k, (1500, 1125, 300)) for k in (1, 6)]
    + [(4, k, (600, 450, 60)) for k in (2, 5)],
)
def test_oulu_protocols_by_rule(oulu_root, protocol, fold, sizes):
    spec = f"oulu-npu:{oulu_root}?protocol={protocol}" + (f"&phone={fold}" if fold else "")
    records = load_dataset(spec)
    assert per_split(records) == dict(zip(("train", "dev", "test"), sizes, strict=True))
    for r in records:
        phone, session, user, file = map(int, r.path.stem.split("_"))
        assert user in OULU_SPLITS[r.split][1]
        assert oulu_kept(protocol, fold, r.split, phone, session, file)
        assert r.attack == {1: None, 2: "print", 3: "print", 4: "replay", 5: "replay"}[file]
    assert_person_disjoint(records)


def test_oulu_reads_the_official_protocol_lists(oulu_root, tmp_path):
    root = tmp_path / "oulu"
    root.mkdir()
    for name, _ in OULU_SPLITS.values():
        (root / f"{name}_files").symlink_to(oulu_root / f"{name}_files")
    for protocol, fold in ((1, None), (3, 2)):
        for split, (name, users) in OULU_SPLITS.items():
            lines = [
                f"{'+1' if file == 1 else '-1' if file < 4 else '-2'},{phone}_{session}_{user:02d}_{file}"
                for phone in range(1, 7)
                for session in (1, 2, 3)
                for user in users
                for file in range(1, 6)
                if oulu_kept(protocol, fold, split, phone, session, file)
            ]
            list_file = (
                root
                / "Protocols"
                / f"Protocol_{protocol}"
                / f"{name}{f'_{fold}' if fold else ''}.txt"
            )
            list_file.parent.mkdir(parents=True, exist_ok=True)
            list_file.write_text("\n".join(lines) + "\n")
    by_list = load_dataset(f"oulu:{root}?protocol=3&phone=2")
    by_rule = load_dataset(f"oulu:{oulu_root}?protocol=3&phone=2")
    assert [(r.path.name, r.split, r.label) for r in by_list] == [
        (r.path.name, r.split, r.label) for r in by_rule
    ]
    with pytest.raises(DatasetLayoutError, match="Protocol_3/Train_5.txt is missing"):
        load_dataset(f"oulu:{root}?protocol=3&phone=5")
    train_list = root / "Protocols" / "Protocol_1" / "Train.txt"
    train_list.write_text("+1,1_1_01_1\n-1,1_1_01_9\n")
    with pytest.raises(DatasetLayoutError, match="Train.txt:2"):
        load_dataset(f"oulu:{root}?protocol=1")
    train_list.write_text("+1,1_1_01_2\n")
    with pytest.raises(DatasetLayoutError, match="label \\+1 contradicts file id 2"):
        load_dataset(f"oulu:{root}?protocol=1")
    train_list.write_text("+1,1_1_01_1\n-2,1_1_19_5\n-1,1_1_20_3\n")
    (root / "Protocols" / "Protocol_1" / "Dev.txt").write_text("+1,1_1_21_1\n-1,1_1_77_2\n")
    with pytest.raises(DatasetLayoutError, match="1 clips listed in Dev.txt are not in"):
        load_dataset(f"oulu:{root}?protocol=1")


def test_oulu_fold_choice_is_checked(oulu_root):
    with pytest.raises(ProtocolError, match="choose it with phone=1..6"):
        load_dataset(f"oulu-npu:{oulu_root}?protocol=4")
    with pytest.raises(ProtocolError, match="not of 2"):
        load_dataset(f"oulu-npu:{oulu_root}?protocol=2&phone=1")
    with pytest.raises(ProtocolError, match="unknown phone '7'"):
        load_dataset(f"oulu-npu:{oulu_root}?protocol=3&phone=7")


CASIA_CODES = ["1", "2", "3", "4", "5", "6", "7", "8", "HR_1", "HR_2", "HR_3", "HR_4"]


@pytest.fixture(scope="module")
def casia_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casia")
    for release, count in (("train_release", 20), ("test_release", 30)):
        for subject in range(1, count + 1):
            for code in CASIA_CODES:
                touch(root / release / str(subject) / f"{code}.avi")
    return root


def casia_ids(records: list[ClipRecord], split: str) -> set[int]:
    return {int(s.removeprefix("casia-fasd:subject")) for s in subjects(records, split)}


def test_casia_overall_takes_dev_from_the_train_subjects(casia_root):
    records = load_dataset(f"casia-fasd:{casia_root}")
    assert per_split(records) == {"train": 180, "dev": 60, "test": 360}
    assert casia_ids(records, "train") == set(range(1, 16))
    assert casia_ids(records, "dev") == set(range(16, 21))
    assert casia_ids(records, "test") == set(range(21, 51))
    assert Counter(r.attack for r in records) == {
        None: 150,
        "warped_print": 150,
        "cut_print": 150,
        "video_replay": 150,
    }
    clip = next(r for r in records if r.path.parts[-3:] == ("test_release", "3", "HR_3.avi"))
    assert (clip.subject, clip.attack, clip.meta["quality"]) == (
        "casia-fasd:subject23",
        "cut_print",
        "high",
    )
    low_real = next(r for r in records if r.path.parts[-3:] == ("train_release", "1", "2.avi"))
    assert (low_real.label, low_real.meta["quality"]) == ("genuine", "low")


@pytest.mark.parametrize(
    ("query", "sizes", "kinds"),
    [
        ("protocol=low", (60, 20, 120), {None, "warped_print", "cut_print", "video_replay"}),
        ("quality=high", (60, 20, 120), {None, "warped_print", "cut_print", "video_replay"}),
        ("protocol=warped", (90, 30, 180), {None, "warped_print"}),
        ("protocol=video&quality=normal", (30, 10, 60), {None, "video_replay"}),
    ],
)
def test_casia_quality_and_attack_protocols(casia_root, query, sizes, kinds):
    records = load_dataset(f"casia:{casia_root}?{query}")
    assert per_split(records) == dict(zip(("train", "dev", "test"), sizes, strict=True))
    assert {r.attack for r in records} == kinds
    if "low" in query:
        assert {r.path.stem for r in records} == {"2", "4", "6", "8"}
    if "high" in query:
        assert {r.path.stem for r in records} == {"HR_1", "HR_2", "HR_3", "HR_4"}


def test_casia_refuses_contradictions_and_strange_clips(casia_root, tmp_path):
    with pytest.raises(ProtocolError, match="fixes quality=low"):
        load_dataset(f"casia-fasd:{casia_root}?protocol=low&quality=high")
    for bad, message in (
        ("train_release/21/1.avi", "train_release/21 is not a subject folder of train_release"),
        ("train_release/1/9.avi", "file name '9.avi'"),
        ("test_release/1/extra/1.avi", "file name '1.avi' \\(in .*extra\\)"),
    ):
        root = tmp_path / bad.replace("/", "_")
        touch(root / "train_release" / "1" / "1.avi")
        touch(root / "test_release" / "1" / "1.avi")
        touch(root / bad)
        with pytest.raises(DatasetLayoutError, match=message):
            load_dataset(f"casia-fasd:{root}")


def tiny_clip(path: Path, fourcc: str, frames: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_clip(
        path, [np.full((24, 32, 3), 40 * i, np.uint8) for i in range(frames)], 10.0, fourcc
    )


def test_folder_layout_gives_splits_subjects_and_attack_kinds(tmp_path):
    touch(tmp_path / "train" / "genuine" / "alice" / "take1.mp4")
    touch(tmp_path / "train" / "spoof" / "print" / "bob_01.avi")
    touch(tmp_path / "train" / "spoof" / "replay" / "carol" / "x.webm")
    touch(tmp_path / "devel" / "real" / "dave_1.mov")
    touch(tmp_path / "test" / "spoof" / "erin.mkv")
    touch(tmp_path / "test" / "genuine" / "notes.txt")
    got = {
        (r.path.name, r.split, r.label, r.attack, r.subject) for r in load_dataset(str(tmp_path))
    }
    assert got == {
        ("take1.mp4", "train", "genuine", None, "alice"),
        ("bob_01.avi", "train", "spoof", "print", "bob"),
        ("x.webm", "train", "spoof", "replay", "carol"),
        ("dave_1.mov", "dev", "genuine", None, "dave"),
        ("erin.mkv", "test", "spoof", None, "erin"),
    }
    touch(tmp_path / "train" / "genuine" / "alice" / "deeper" / "y.mp4")
    with pytest.raises(DatasetLayoutError, match="too deep"):
        load_dataset(f"folder:{tmp_path}")
    unsplit = tmp_path / "unsplit"
    touch(unsplit / "spoof" / "mask" / "f_1.mp4")
    assert [(r.split, r.attack) for r in load_dataset(f"folder:{unsplit}")] == [(None, "mask")]
    touch(unsplit / "train" / "genuine" / "g.mp4")
    with pytest.raises(DatasetLayoutError, match="mixes split folders"):
        load_dataset(f"folder:{unsplit}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no split or label folders"):
        load_dataset(f"folder:{tmp_path / 'empty'}")


def test_index_csv_specs_and_the_decode_check(tmp_path):
    clips = [
        ClipRecord(tiny_clip(tmp_path / "a_1.mp4", "mp4v"), "genuine", subject="a", split="train"),
        ClipRecord(tiny_clip(tmp_path / "b_1.avi", "MJPG"), "spoof", "print", "b", "test"),
    ]
    broken = tmp_path / "c_1.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    clips.append(ClipRecord(broken, "spoof", "replay", "c", "test"))
    write_index(clips, tmp_path)
    for spec in (str(tmp_path / "index.csv"), str(tmp_path), f"csv:{tmp_path}/index.csv"):
        assert [(r.path.name, r.attack, r.split) for r in load_dataset(spec)] == [
            ("a_1.mp4", None, "train"),
            ("b_1.avi", "print", "test"),
            ("c_1.mp4", "replay", "test"),
        ]
    records = load_dataset(str(tmp_path))
    # The two real clips decode; random bytes under an .mp4 name do not.
    ((path, why),) = unreadable_clips(records)
    assert path == broken and why.startswith("no decodable frame")
    (tmp_path / "a_1.mp4").unlink()
    assert (tmp_path / "a_1.mp4", "missing") in unreadable_clips(records)
    with pytest.raises(DatasetLayoutError, match="1 listed clips do not exist"):
        load_dataset(str(tmp_path))


def test_spec_parsing_and_registry_errors(tmp_path, replay_root):
    assert list_datasets()[:4] == ["replay-attack", "msu-mfsd", "oulu-npu", "casia-fasd"]
    spec = parse_spec("oulu-npu:/data/oulu?protocol=3&phone=2")
    assert (spec.name, spec.path, spec.options) == (
        "oulu-npu",
        Path("/data/oulu"),
        {"protocol": "3", "phone": "2"},
    )
    with pytest.raises(
        UnknownDatasetError, match="unknown data set 'siw'.*replay-attack, msu-mfsd"
    ):
        load_dataset("siw:/data/siw")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_dataset(f"casia-fasd:{tmp_path / 'nowhere'}")
    with pytest.raises(
        ProtocolError, match="unknown protocol 'smalltest'; choose one of grandtest"
    ):
        load_dataset(f"replay-attack:{replay_root}?protocol=smalltest")
    with pytest.raises(ProtocolError, match="no option 'phone'"):
        load_dataset(f"replay-attack:{replay_root}?phone=1")
    with pytest.raises(ProtocolError, match="option 'light' twice"):
        load_dataset(f"replay-attack:{replay_root}?light=adverse&light=controlled")


def test_generic_split_and_attack_filters(replay_root):
    records = load_dataset(f"replay-attack:{replay_root}?split=test&attack=print,highdef_video")
    assert per_split(records) == {"test": 80 + 80 + 80}
    assert Counter(r.attack for r in records) == {None: 80, "print": 80, "highdef_video": 80}
    with pytest.raises(ProtocolError, match="no attack kind \\['mask'\\]"):
        load_dataset(f"replay-attack:{replay_root}?attack=mask")
    with pytest.raises(ProtocolError, match="unknown split"):
        load_dataset(f"replay-attack:{replay_root}?split=validation")


def test_cross_dataset_trains_on_one_and_tests_on_the_other(replay_root, msu_root, tmp_path):
    pairs = cross_dataset(
        f"replay-attack:{replay_root}?protocol=adverse",
        f"replay-attack:{replay_root}?protocol=controlled",
    )
    assert per_split(pairs) == {"train": 180, "dev": 180, "test": 240}
    assert {(r.split == "test", r.meta["light"]) for r in pairs} == {
        (False, "adverse"),
        (True, "controlled"),
    }
    to_msu = cross_dataset(f"replay-attack:{replay_root}?protocol=adverse", f"msu-mfsd:{msu_root}")
    assert {r.meta["dataset"] for r in to_msu if r.split == "test"} == {"msu-mfsd"}
    assert per_split(to_msu)["test"] == 80
    clip = touch(tmp_path / "x_1.mp4")
    write_index([ClipRecord(clip, "genuine", subject="x", split="train")], tmp_path, "a.csv")
    write_index([ClipRecord(clip, "genuine", subject="x", split="test")], tmp_path, "b.csv")
    with pytest.raises(ProtocolError, match="1 clips are both in"):
        cross_dataset(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"))
