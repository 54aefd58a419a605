"""GPU benchmark: encoder and service throughput on one CUDA device, in one table.

Self-contained: needs only this repository installed with the serve and train extras
and a CUDA build of torch; it exports its own random-weight models. Sections, each
cut short by its own time budget (the whole run stays under ~5 minutes):

1. encoder alone, device-resident input: VGG-16 (224) and light (112) through
   ``TorchEncoder`` eager, fp32 / bf16 / fp16, NCHW vs channels-last, batch 1-256;
   ratios against eager fp32 NCHW at the same batch;
2. the best eager configuration through ``encode`` (numpy in, numpy out: host copies
   included), and compiled with torch.compile(mode="max-autotune-no-cudagraphs");
3. ONNX Runtime's CUDA provider, when this onnxruntime has it;
4. the service in-process: ``LivenessEngine`` (the server's thread pool, micro-batcher
   and per-stream sessions) with the torch engine, N streams of 640x480 frames decoded
   beforehand, declaring 15 fps so every frame is encoded; plus the same with an encoder
   that returns zeros at once, which is the ceiling that preprocessing (CPU) sets.

``--cpu --quick`` runs it all on the CPU with tiny settings, to check it works.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import BenchContext, Table, fmt, machine_description, ratio
from bench.fixtures import ModelSpec, bench_model, face_frames
from bench.gate import quick_gate
from bench.service_load import ZeroEncoder, drive_service

TOTAL_BUDGET_S = 280.0
BUDGETS = {"eager": 75.0, "host": 15.0, "compile": 110.0, "ort": 20.0, "service": 60.0}  # s
COMPILE_MIN_S = 60.0  # a compile is not started with less time left (it cannot be cut short)


class Budget:
    def __init__(self, total_s: float) -> None:
        self.t0, self.total = time.perf_counter(), total_s

    def deadline(self, section_s: float) -> float:
        left = self.total - (time.perf_counter() - self.t0)
        return time.perf_counter() + max(0.0, min(section_s, left))


def _throughput(
    call, batch: int, sync, min_s: float, deadline: float
) -> tuple[float, float] | None:
    """(frames/s, ms per call) of ``call`` after 2 warm-up calls; None past the deadline."""
    if time.perf_counter() >= deadline:
        return None
    for _ in range(2):
        call()
    sync()
    n, t0 = 0, time.perf_counter()
    while n < 3 or (time.perf_counter() - t0 < min_s and time.perf_counter() < deadline):
        call()
        n += 1
    sync()
    seconds = (time.perf_counter() - t0) / n
    return batch / seconds, seconds * 1000.0


class _Run:
    def __init__(self, quick: bool, device: str, workdir: Path) -> None:
        import torch

        self.torch, self.quick, self.device, self.workdir = torch, quick, device, workdir
        self.budget = Budget(90.0 if quick else TOTAL_BUDGET_S)
        self.min_s = 0.02 if quick else 0.4
        self.sizes = {"vgg16": 32, "light": 32} if quick else {"vgg16": 224, "light": 112}
        self.batches = (2,) if quick else (1, 16, 64, 256)
        self.base: dict[str, dict[int, float]] = {}  # eager fp32 NCHW frames/s by model, batch
        self.table = Table(
            f"Encoder and service throughput on {self._device_name()}",
            ["section", "model", "configuration", "batch", "frames/s", "ms per call", "vs eager fp32 NCHW", "max deviation vs fp32"],
        )  # fmt: skip

    def _device_name(self) -> str:
        if self.device == "cuda":
            return self.torch.cuda.get_device_name(0)
        return "the CPU (--cpu: a check that the script runs, not a GPU figure)"

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def _input(self, batch: int, size: int, enc):
        """Random frames on the device in the encoder's dtype and layout (no copy per call)."""
        torch = self.torch
        x = torch.randn(batch, 3, size, size, device=self.device).to(enc.dtype)
        return x.contiguous(memory_format=torch.channels_last) if enc.channels_last else x

    def encoder(self, model_dir, **options):
        from model.torch_engine import TorchEncoder

        return TorchEncoder(model_dir, device=self.device, **options)

    # -- sections ------------------------------------------------------------------------
    def eager(self, name: str, model_dir) -> tuple[str, bool, int, float]:
        torch, size = self.torch, self.sizes[name]
        deadline = self.budget.deadline(BUDGETS["eager"] / 2)
        probe = torch.from_numpy(
            np.random.default_rng(0).normal(size=(8, 3, size, size)).astype(np.float32)
        )
        reference = self.encoder(model_dir, dtype="fp32", channels_last=False)
        ref_out = reference.encode(probe.numpy())
        base = self.base.setdefault(name, {})
        best = ("fp32", False, self.batches[0], 0.0)
        for dtype in ("fp32", "bf16", "fp16"):
            for cl in (False, True):
                enc = self.encoder(model_dir, dtype=dtype, channels_last=cl)
                dev = np.abs(enc.encode(probe.numpy()) - ref_out).max() / np.abs(ref_out).max()
                for batch in self.batches:
                    x = self._input(batch, size, enc)
                    call = lambda e=enc, x=x: e.encode_tensor(x)  # noqa: E731
                    r = _throughput(call, batch, self.sync, self.min_s, deadline)
                    if r is not None:
                        base.setdefault(batch, r[0])
                        best = max(best, (dtype, cl, batch, r[0]), key=lambda b: b[3])
                    config = f"eager {dtype} {'channels-last' if cl else 'NCHW'}"
                    versus = ratio(r[0], base[batch]) if r else ""
                    self.add("1 encoder", name, config, batch, r, versus, f"{dev:.1e}")
        return best

    def host(self, name: str, model_dir, best) -> None:
        dtype, cl, batch, eager_fps = best
        size, label = self.sizes[name], f"{dtype} {'channels-last' if cl else 'NCHW'}"
        enc = self.encoder(model_dir, dtype=dtype, channels_last=cl)
        x = np.random.default_rng(1).normal(size=(batch, 3, size, size)).astype(np.float32)
        deadline = self.budget.deadline(BUDGETS["host"] / 2)
        r = _throughput(lambda: enc.encode(x), batch, self.sync, self.min_s, deadline)
        versus = f"{r[0] / eager_fps:.2f}× best eager" if r else ""
        self.add("2 host copies", name, f"encode() numpy->numpy, {label}", batch, r, versus)

    def compiled(self, name: str, model_dir, best) -> None:
        dtype, cl, batch, eager_fps = best
        size, label = self.sizes[name], f"{dtype} {'channels-last' if cl else 'NCHW'}"
        deadline = self.budget.deadline(BUDGETS["compile"] / 2)
        min_s = COMPILE_MIN_S if self.device == "cuda" else 5.0
        if time.perf_counter() >= deadline - min_s:
            return self.add("2 compiled", name, label, batch, None)
        backend = "inductor" if self.device == "cuda" else "aot_eager"  # CPU: the path only
        t0 = time.perf_counter()
        compiled = self.encoder(
            model_dir, dtype=dtype, channels_last=cl, compile=True, compile_backend=backend
        )
        xt = self._input(batch, size, compiled)
        compiled.encode_tensor(xt)
        self.sync()
        compile_s = time.perf_counter() - t0
        call = lambda: compiled.encode_tensor(xt)  # noqa: E731
        r = _throughput(call, batch, self.sync, self.min_s, deadline + 10)
        versus = f"{r[0] / eager_fps:.2f}× best eager" if r else ""
        self.add(
            "2 compiled", name, f"{backend} {label}, compile {compile_s:.0f} s", batch, r, versus
        )

    def add(self, section, name, config, batch, r, versus: str = "", deviation: str = "") -> None:
        """A row; ``r`` = (frames/s, ms per call), None when the section ran out of time."""
        if r is None:
            self.table.add(section, name, config, batch, "skipped: over budget", "", "", "")
        else:
            self.table.add(section, name, config, batch, fmt(r[0]), fmt(r[1]), versus, deviation)

    def ort(self, name: str, model_dir) -> None:
        import onnxruntime as ort

        if self.device != "cuda" or "CUDAExecutionProvider" not in ort.get_available_providers():
            return self.table.add("3 ONNX Runtime", name, "CUDA provider not available", *[""] * 5)
        from model.runtime import LivenessModel

        model = LivenessModel(model_dir, providers="cuda")
        size, deadline = self.sizes[name], self.budget.deadline(BUDGETS["ort"] / 2)
        for batch in self.batches:
            x = np.random.default_rng(2).normal(size=(batch, 3, size, size)).astype(np.float32)
            r = _throughput(lambda x=x: model.encode(x), batch, self.sync, self.min_s, deadline)
            base = self.base.get(name, {}).get(batch)
            versus = ratio(r[0], base) if r and base else "–"
            self.add("3 ONNX Runtime", name, "CUDA provider fp32, numpy->numpy", batch, r, versus)

    def service(self, name: str, model_dir, best) -> None:
        dtype, cl, _, eager_fps = best
        streams = 4 if self.quick else 256
        seconds = 1.0 if self.quick else 8.0
        frames = face_frames(16 if self.quick else 60)
        enc = self.encoder(model_dir, dtype=dtype, channels_last=cl)
        deadline = self.budget.deadline(BUDGETS["service"] / 2)
        engines = ((f"torch eager {dtype}", enc), ("zeros: preprocessing ceiling", ZeroEncoder(enc.encoder_dim)))  # fmt: skip
        for label, encoder in engines:
            config = f"{streams} streams, {label}"
            if time.perf_counter() + seconds > deadline:
                self.add("4 service", name, config, "", None)
                continue
            fps, batch = asyncio.run(drive_service(model_dir, encoder, streams, frames, seconds))
            self.table.add("4 service", name, config, f"{batch:.0f} (mean)", fmt(fps), "",
                           f"{fps / eager_fps:.2f}× best eager", "")  # fmt: skip


def run(ctx: BenchContext, cpu: bool = False) -> list[Table]:
    import torch

    device = "cpu" if cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench gpu: this torch sees no CUDA device; use --cpu to check the script")
    r = _Run(ctx.quick, device, ctx.workdir)

    def sections() -> None:
        best = {}
        for name in ("vgg16", "light"):
            model_dir = bench_model(ModelSpec(name, r.sizes[name]), ctx.workdir)
            best[name] = (model_dir, r.eager(name, model_dir))
            r.host(name, *best[name])
            r.ort(name, model_dir)
            r.service(name, *best[name])
        for name, (model_dir, config) in best.items():  # last: minutes of autotuning each
            r.compiled(name, model_dir, config)

    ctx.gated(r.table, "gpu", sections)
    r.table.notes += [
        f"total {time.perf_counter() - r.budget.t0:.0f} s (budget {r.budget.total:.0f} s); "
        "frames/s of sections 1-2 are the encoder alone (input already on the device) unless "
        "the row says numpy->numpy; max deviation = max |features - fp32| / max |fp32|",
        "service: frames decoded beforehand (no JPEG/video decoding), 640x480, Haar face "
        "detection every 5th frame, magnification and normalisation on the CPU thread pool",
    ]
    return [r.table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (checks the script)")
    parser.add_argument("--quick", action="store_true", help="tiny models and batches")
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="liveness-gpu-bench-") as tmp:
        ctx = BenchContext(quick=args.quick, gate=quick_gate(), workdir=Path(tmp))
        for table in run(ctx, cpu=args.cpu):
            print(table.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
