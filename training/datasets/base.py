"""What every data set adapter shares: its errors, clip listing and layout checks.

An adapter turns a data set folder into ``list[ClipRecord]`` for one protocol. It lists
the files that are on disk (it never invents paths), parses the data set's own file
names, and refuses a tree that does not look like that data set, saying what it expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

# Containers a clip may come in; matched case-insensitively.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv")


class DatasetError(ValueError):
    """A data set spec, folder or protocol that cannot give a clip list."""


class UnknownDatasetError(DatasetError):
    """The spec names a data set no adapter knows."""


class DatasetLayoutError(DatasetError):
    """The folder is missing, or its files do not follow the data set's layout."""


class ProtocolError(DatasetError):
    """Unknown protocol or option, contradicting options, or a selection with no clips."""


def require_dir(root: Path | str, title: str) -> Path:
    """The data set root as an absolute path; raises when it is not a folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetLayoutError(f"{title}: data set folder {path} does not exist")
    if not path.is_dir():
        raise DatasetLayoutError(f"{title}: {path} is a file, expected the data set folder")
    return path.resolve()


def describe_dir(path: Path, limit: int = 8) -> str:
    """A short listing of a folder for error messages: 'a/, b.txt (+3 more)'."""
    if not path.is_dir():
        return "nothing (not a folder)"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    names = [n for n in names if not n.startswith(".")]
    if not names:
        return "nothing (empty folder)"
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def require_layout(root: Path, folders: Iterable[str], title: str, expected: str) -> None:
    """Raise unless every relative folder in ``folders`` exists under ``root``."""
    missing = [f for f in folders if not (root / f).is_dir()]
    if missing:
        raise DatasetLayoutError(
            f"{root} does not look like {title}: missing {', '.join(f + '/' for f in missing)}. "
            f"Expected {expected}. Found: {describe_dir(root)}"
        )


def is_video(path: Path) -> bool:
    # Hidden files and macOS "._" resource forks sit next to clips in copied trees.
    return (
        path.is_file() and not path.name.startswith(".") and path.suffix.lower() in VIDEO_EXTENSIONS
    )


def list_videos(folder: Path, recursive: bool = False) -> list[Path]:
    """Video files in ``folder`` (and below it when ``recursive``), sorted by path."""
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if is_video(p))


def name_error(path: Path, title: str, pattern: str) -> DatasetLayoutError:
    """The error for a clip whose file name does not follow the data set's scheme."""
    return DatasetLayoutError(
        f"{title}: file name {path.name!r} (in {path.parent}) does not follow the data set's "
        f"naming scheme {pattern}"
    )


def resolve_filters(
    protocol: str,
    preset: Mapping[str, str],
    given: Mapping[str, str | None],
    title: str,
) -> dict[str, str | None]:
    """Merge the filters a protocol fixes with those given as options.

    A protocol such as Replay-Attack's ``controlled`` is shorthand for ``light=controlled``;
    giving ``light=adverse`` with it is a contradiction, not an override.
    """
    merged = dict(given)
    for key, value in preset.items():
        if merged.get(key) not in (None, value):
            raise ProtocolError(
                f"{title}: protocol {protocol!r} fixes {key}={value}, "
                f"which contradicts {key}={merged[key]}"
            )
        merged[key] = value
    return merged


def check_choice(value: str | None, allowed: Iterable[str], what: str, title: str) -> None:
    allowed = tuple(allowed)
    if value is not None and value not in allowed:
        raise ProtocolError(
            f"{title}: unknown {what} {value!r}; choose one of {', '.join(allowed)}"
        )


def require_clips(records: list, title: str, where: Path, selection: str) -> None:
    if not records:
        raise ProtocolError(f"{title}: {selection} selects no clips under {where}")
