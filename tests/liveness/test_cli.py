"""The liveness command: its subcommands and the options they share."""

from __future__ import annotations

import pytest

from liveness.cli import build_parser, main, subcommands

FOLDER_OUT = {  # subcommand -> the arguments it needs besides --out
    "synth": ["--source", "clips"],
    "train": [],
    "export": ["run"],
    "eval": ["--data", "clips"],
    "ablation": ["--data", "clips"],
}


def test_every_subcommand_is_offered_with_a_one_line_help(capsys):
    names = list(subcommands())
    assert names[:4] == ["serve", "check", "stream", "verify-token"]
    assert {"synth", "train", "export", "eval", "ablation", "magnify", "bench"} <= set(names)
    assert main([]) == 2
    listing = capsys.readouterr().out
    for name, (_, help_text) in subcommands().items():
        assert name in listing and "\n" not in help_text


@pytest.mark.parametrize("command", sorted(FOLDER_OUT))
def test_out_is_a_folder_and_a_file_there_is_refused(command, tmp_path, capsys):
    file = tmp_path / "report.json"
    file.write_text("{}")
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([command, *FOLDER_OUT[command], "--out", str(file)])
    assert stop.value.code == 2
    assert "is a file; --out names a folder" in capsys.readouterr().err
    args = build_parser().parse_args([command, *FOLDER_OUT[command], "--out", str(tmp_path)])
    assert args.out == tmp_path


def test_the_file_writing_commands_name_their_file_and_refuse_out(tmp_path, capsys):
    assert main(["magnify", "clip.mp4", "--image", "xt.png", "--out", str(tmp_path)]) == 2
    assert "the picture is --image" in capsys.readouterr().err
    assert main(["bench", "magnifier", "--out", str(tmp_path)]) == 2
    assert "the tables file is --report" in capsys.readouterr().err
