"""Each benchmark runs end to end with --quick settings and prints the rows it promises.

No timing is asserted (speed is measured by the benchmarks, not tested); what is checked
is that every script runs its real path (real exported models, a real server process,
real video) and reports every row, and the few facts that do not depend on speed.
"""

from __future__ import annotations

import pytest

from bench import batching, gpu, magnifier, stages, streaming, upload
from bench.cli import main as bench_main
from bench.common import BenchContext
from bench.gate import quick_gate
from model.config import reads_motion
from model.manifest import DEFAULT_MODEL_DIR, read_manifest


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> BenchContext:
    # one work folder for the module: models and clips are exported once and shared
    return BenchContext(quick=True, gate=quick_gate(), workdir=tmp_path_factory.mktemp("bench"))


def _number(cell: str) -> float:
    return float(cell.split()[0].rstrip("×"))


@pytest.mark.slow
def test_stages_reports_every_stage_for_both_backbones(ctx):
    stage_table, encoders, e2e, motion = stages.run(ctx)
    for model in ("light 64", "vgg16 32"):
        rows = [r for r in stage_table.rows if r[0] == model]
        own = "blazeface"  # quick runs export fresh models, with the default detector
        assert [r[1] for r in rows] == [s[1] for s in stages.STAGES] + [
            "sum of the per-frame rows, haar",
            "sum of the per-frame rows, blazeface",
            f"measured end to end, {own} (the model's)",
        ]
        assert [r[1] for r in encoders.rows if r[0] == model] == ["1", "4"]
    assert e2e.column("model") == ["light 64"] * 4 + ["vgg16 32"]
    # the light model with each detector, the model's own first, on all cores then one thread
    assert e2e.column("detector") == ["blazeface", "haar (override)"] * 2 + ["blazeface"]
    assert e2e.column("ORT threads")[2:4] == ["1", "1"]
    assert e2e.column("vs the model's detector")[0] == "1.00×"
    assert all(_number(c) > 0 for c in e2e.column("frames/s"))
    assert e2e.column("frames") == ["30"] * 5
    # the derived stream count is the measured rate over 30 fps
    for fps, streams in zip(
        e2e.column("frames/s"), e2e.column("30 fps streams (derived)"), strict=True
    ):
        assert _number(streams) == pytest.approx(_number(fps) / 30, abs=0.06)
    assert len(stage_table.foreign) == 2 and "foreign load" in stage_table.render()
    # a default model that reads motion is measured against the same without it
    reads = reads_motion(read_manifest(DEFAULT_MODEL_DIR).network)
    assert len(motion.rows) == (2 if reads else 0)
    if reads:
        assert motion.column("vs the default")[0] == "1.00×"
        assert all(_number(c) > 0 for c in motion.column("frames/s"))


@pytest.mark.slow
def test_streaming_compares_ours_and_naive_at_each_window(ctx):
    (table,) = streaming.run(ctx)
    assert [(r[0], r[1]) for r in table.rows] == [
        ("light 64", "4"), ("light 64", "8"), ("vgg16 32", "4"), ("vgg16 32", "8"),
    ]  # fmt: skip
    assert table.column("mean / smallest T")[0] == "1.00×"
    assert all(_number(c) > 0 for c in table.column("naive mean ms/frame"))
    assert all(_number(c) > 0 for c in table.column("head ms"))


def test_magnifier_gains_match_the_linear_theory(ctx):
    (table,) = magnifier.run(ctx)
    assert table.column("implementation")[:4] == [r[1] for r in magnifier.ROWS][:4]
    expected = [_number(c) for c in table.column("expected gain")]
    measured = [_number(c) for c in table.column("measured gain")]
    assert expected[-1] == 1.0 and measured[-1] == pytest.approx(1.0, abs=0.02)  # the meter
    assert min(expected[:4]) > 3  # the texture really is magnified
    for e, m in zip(expected, measured, strict=True):
        assert m == pytest.approx(e, rel=0.03)


@pytest.mark.slow
def test_batching_runs_a_real_server_with_batching_on_and_off(ctx):
    (table,) = batching.run(ctx)
    # the light model with its own detector, then the other one in its place
    runs = [("light 64", "blazeface"), ("light 64", "haar (override)"), ("vgg16 32", "blazeface")]
    assert [(r[0], r[1], r[2], r[3]) for r in table.rows] == [
        (model, det, n, mode)
        for model, det in runs
        for n in ("1", "4")
        for mode in ("on (16)", "off (1)")
    ]
    for row in table.rows:
        assert _number(row[4]) > 0  # frames/s
        if row[3] == "off (1)" or row[2] == "1":  # one crop per encoder call
            assert row[5] == "1.00"


@pytest.mark.slow
def test_upload_posts_the_clip_to_a_real_server(ctx):
    (table,) = upload.run(ctx)
    assert table.column("model") == ["light 64", "vgg16 32"]
    for row in table.rows:
        assert all(_number(c) > 0 for c in row[2:])


@pytest.mark.slow
def test_gpu_script_runs_on_the_cpu(capsys):
    assert gpu.main(["--cpu", "--quick"]) == 0
    out = capsys.readouterr().out
    for section in ("1 encoder", "2 host copies", "3 ONNX Runtime", "4 service", "2 compiled"):
        assert f"| {section}" in out, section
    assert "CUDA provider not available" in out
    assert out.count("| 1 encoder ") >= 12  # 3 dtypes x 2 layouts x 2 models, one batch


def test_cli_runs_a_benchmark_and_writes_the_tables(tmp_path, capsys):
    out = tmp_path / "tables.md"
    args = ["magnifier", "--quick", "--workdir", str(tmp_path), "--report", str(out)]
    assert bench_main(args) == 0
    text = out.read_text()
    assert text.startswith("machine: ") and "### Magnifier at 64x64" in text
    assert "### Magnifier" in capsys.readouterr().out
    assert bench_main(["nonsense"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    assert bench_main(["magnifier", "--out", str(tmp_path)]) == 2
    assert "--report" in capsys.readouterr().err
    assert bench_main(["--quick", "load", "--seconds", "1"]) == 2  # table options before load
    assert "liveness bench load --help" in capsys.readouterr().err
