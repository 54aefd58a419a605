"""Data sets by name: ``load_dataset("replay-attack:/data/replay?protocol=controlled")``.

A spec is ``<name>:<path>[?<option>=<value>&...]`` or a bare path. A bare path is read
as an index CSV when it is a ``.csv`` file or a folder holding ``index.csv``, else as a
folder tree (see ``training.datasets.generic``). Each adapter module's docstring gives
the layout it expects and its protocols; ``list_datasets()`` names them.

Two options work with every data set, after its protocol has chosen the clips:
``split=train,dev`` keeps those splits, ``attack=print,replay`` keeps genuine clips and
those attack kinds. Cross-data-set evaluation (train on one, test on another, as in the
paper's Table 2) is ``cross_dataset(train_spec, test_spec)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from model.labels import GENUINE
from training.datasets import casia_fasd, generic, msu_mfsd, oulu_npu, replay_attack
from training.datasets.base import (
    DatasetError,
    DatasetLayoutError,
    ProtocolError,
    UnknownDatasetError,
)
from training.records import SPLITS, ClipRecord

__all__ = [
    "SPEC_HELP",
    "DatasetAdapter",
    "DatasetError",
    "DatasetLayoutError",
    "DatasetSpec",
    "ProtocolError",
    "UnknownDatasetError",
    "cross_dataset",
    "get_adapter",
    "list_datasets",
    "load_dataset",
    "parse_spec",
]


@dataclass(frozen=True)
class DatasetAdapter:
    name: str
    title: str
    load: Callable[..., list[ClipRecord]]  # load(path, **options) -> records
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # option -> values
    aliases: tuple[str, ...] = ()


_ADAPTERS = [
    DatasetAdapter(
        replay_attack.NAME,
        "Replay-Attack (Idiap)",
        replay_attack.load_replay_attack,
        {
            "protocol": replay_attack.PROTOCOLS,
            "light": replay_attack.LIGHTS,
            "support": replay_attack.SUPPORTS,
        },
        aliases=("replay", "replayattack"),
    ),
    DatasetAdapter(
        msu_mfsd.NAME,
        "MSU-MFSD",
        msu_mfsd.load_msu_mfsd,
        {"protocol": msu_mfsd.PROTOCOLS, "camera": msu_mfsd.CAMERAS},
        aliases=("msu",),
    ),
    DatasetAdapter(
        oulu_npu.NAME,
        "OULU-NPU",
        oulu_npu.load_oulu_npu,
        {"protocol": oulu_npu.PROTOCOLS, "phone": tuple(str(p) for p in oulu_npu.PHONES)},
        aliases=("oulu",),
    ),
    DatasetAdapter(
        casia_fasd.NAME,
        "CASIA-FASD",
        casia_fasd.load_casia_fasd,
        {"protocol": casia_fasd.PROTOCOLS, "quality": casia_fasd.QUALITIES},
        aliases=("casia",),
    ),
    DatasetAdapter("folder", "a folder tree of clips", generic.load_folder),
    DatasetAdapter("csv", "an index.csv", generic.load_csv, aliases=("index",)),
]
_BY_NAME = {key: a for a in _ADAPTERS for key in (a.name, *a.aliases)}
GENERIC_OPTIONS = ("split", "attack")

SPEC_HELP = f"NAME:PATH[?OPTION=VALUE&...] or a PATH; NAME: {', '.join(a.name for a in _ADAPTERS)}"

_NAMED = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_-]+):(?P<path>.*)$")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    path: Path
    options: dict[str, str]


def list_datasets() -> list[str]:
    """Names of the known data sets, in registry order."""
    return [a.name for a in _ADAPTERS]


def get_adapter(name: str) -> DatasetAdapter:
    adapter = _BY_NAME.get(name.lower())
    if adapter is None:
        raise UnknownDatasetError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}")
    return adapter


def parse_spec(spec: str) -> DatasetSpec:
    """Split a spec into data set name, path and options (see the module docstring)."""
    text = spec.strip()
    body, _, query = text.partition("?")
    match = _NAMED.match(body)
    if match and (match["name"].lower() in _BY_NAME or not Path(body).exists()):
        name, path_text = get_adapter(match["name"]).name, match["path"]
    else:
        path_text = body
        path = Path(body).expanduser()
        is_index = path.suffix.lower() == ".csv" or (path / "index.csv").is_file()
        name = "csv" if is_index else "folder"
    if not path_text:
        raise DatasetError(f"data set spec {spec!r} gives no path")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:
            raise ProtocolError(f"data set spec {spec!r} gives option {key!r} twice")
        options[key] = value
    return DatasetSpec(name, Path(path_text).expanduser(), options)


def load_dataset(spec: str) -> list[ClipRecord]:
    """The clips a spec selects, with split, subject, attack kind and meta filled in."""
    parsed = parse_spec(spec)
    adapter = get_adapter(parsed.name)
    options = dict(parsed.options)
    generic_filters = {k: options.pop(k) for k in GENERIC_OPTIONS if k in options}
    for key, value in options.items():
        if key not in adapter.options:
            known = ", ".join([*adapter.options, *GENERIC_OPTIONS])
            raise ProtocolError(f"{adapter.title} has no option {key!r}; options: {known}")
        if value not in adapter.options[key]:
            raise ProtocolError(
                f"{adapter.title}: unknown {key} {value!r}; choose one of "
                f"{', '.join(adapter.options[key])}"
            )
    records = adapter.load(parsed.path, **options)
    records = _filter(records, generic_filters, spec)
    return sorted(records, key=lambda r: str(r.path))


def _filter(records: list[ClipRecord], filters: dict[str, str], spec: str) -> list[ClipRecord]:
    if "split" in filters:
        splits = set(_values(filters["split"]))
        unknown = splits - set(SPLITS)
        if unknown:
            raise ProtocolError(f"{spec!r}: unknown split {sorted(unknown)}; splits are {SPLITS}")
        records = [r for r in records if r.split in splits]
    if "attack" in filters:
        kinds = set(_values(filters["attack"]))
        present = {r.attack for r in records if r.attack}
        unknown = kinds - present
        if unknown:
            raise ProtocolError(
                f"{spec!r}: no attack kind {sorted(unknown)} here; kinds: {sorted(present)}"
            )
        records = [r for r in records if r.label == GENUINE or r.attack in kinds]
    if not records:
        raise ProtocolError(f"{spec!r} selects no clips")
    return records


def _values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def cross_dataset(train_spec: str, test_spec: str) -> list[ClipRecord]:
    """Train and dev clips of ``train_spec`` with the test clips of ``test_spec``.

    The decision threshold comes from the first data set's dev split and the score from
    the second's test split, as in the paper's inter-test (Table 2).
    """
    train = [r for r in load_dataset(train_spec) if r.split in ("train", "dev")]
    test = [r for r in load_dataset(test_spec) if r.split == "test"]
    if not any(r.split == "train" for r in train):
        raise ProtocolError(f"{train_spec!r} has no train split to train on")
    if not test:
        raise ProtocolError(f"{test_spec!r} has no test split to test on")
    shared = {r.path for r in train} & {r.path for r in test}
    if shared:
        raise ProtocolError(
            f"{len(shared)} clips are both in {train_spec!r} (train/dev) and in {test_spec!r} "
            f"(test), e.g. {sorted(shared)[0]}"
        )
    return train + test
