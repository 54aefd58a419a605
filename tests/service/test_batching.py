"""The encoder micro-batcher, driving the real tiny ONNX encoder."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.runtime import LivenessModel
from service.batching import BatcherClosed, MicroBatcher, fair_shares


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return LivenessModel(tiny_model_dir, providers="cpu", threads=1)


class CountingEncoder:
    """The real encoder, with a record of each call's batch size."""

    def __init__(self, model: LivenessModel) -> None:
        self.model = model
        self.sizes: list[int] = []

    def encode(self, x: np.ndarray) -> np.ndarray:
        self.sizes.append(len(x))
        return self.model.encode(x)


def crops(n: int, seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, size, size)).astype(np.float32)


def run(coro):
    return asyncio.run(coro)


def test_fair_shares_serve_small_requests_whole_and_split_the_rest_evenly():
    assert fair_shares([1, 100], 16) == [1, 15]
    assert fair_shares([100, 100], 16) == [8, 8]
    assert fair_shares([3, 3, 3], 16) == [3, 3, 3]
    assert fair_shares([100, 1, 1], 4) == [2, 1, 1]
    assert fair_shares([5, 5, 5], 4) == [2, 1, 1]
    assert fair_shares([], 4) == []


@given(st.lists(st.integers(0, 50), max_size=8), st.integers(1, 32))
def test_fair_shares_properties(remaining, slots):
    shares = fair_shares(remaining, slots)
    assert sum(shares) == min(slots, sum(remaining))
    assert all(0 <= s <= r for s, r in zip(shares, remaining, strict=True))
    # nobody left wanting has fewer rows than another request minus one
    for i, (s, r) in enumerate(zip(shares, remaining, strict=True)):
        if s < r:
            assert all(other <= s + 1 for j, other in enumerate(shares) if j != i)


def test_concurrent_frames_merge_into_batches_with_the_same_features(model):
    async def main():
        enc = CountingEncoder(model)
        batcher = MicroBatcher(enc.encode, max_batch=8, max_wait_ms=50)
        await batcher.start()
        xs = [crops(1, i) for i in range(12)]
        outs = await asyncio.gather(*(batcher.encode(x) for x in xs))
        await batcher.stop()
        return enc.sizes, xs, outs

    sizes, xs, outs = run(main())
    assert sizes == [8, 4]  # a full batch at once, the rest after the wait
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_allclose(out, model.encode(x), rtol=1e-4, atol=1e-6)


def test_large_request_is_split_in_order_and_never_waits(model):
    async def main():
        enc = CountingEncoder(model)
        batcher = MicroBatcher(enc.encode, max_batch=16, max_wait_ms=5000)
        await batcher.start()
        x = crops(40, 1)
        start = time.perf_counter()
        out = await batcher.encode(x)
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return enc.sizes, x, out, elapsed

    sizes, x, out, elapsed = run(main())
    assert sizes == [16, 16, 8]
    assert elapsed < 2.5, "a full batch (and the rest of a split request) must not wait 5 s"
    np.testing.assert_allclose(out, model.encode(x), rtol=1e-4, atol=1e-6)


def test_lone_frame_waits_for_company_then_runs_alone(model):
    async def main():
        enc = CountingEncoder(model)
        batcher = MicroBatcher(enc.encode, max_batch=16, max_wait_ms=40)
        await batcher.start()
        start = time.perf_counter()
        await batcher.encode(crops(1, 0))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return enc.sizes, elapsed

    sizes, elapsed = run(main())
    assert sizes == [1]
    assert elapsed >= 0.035  # it did wait (most of) max_wait for other frames


def test_no_wait_when_every_possible_caller_is_queued(model):
    """With the number of open sessions known, a lone session's frame runs at once, and
    N sessions' frames run together as soon as all N are queued."""

    async def main(open_sessions: int, submit: int):
        enc = CountingEncoder(model)
        batcher = MicroBatcher(
            enc.encode, max_batch=16, max_wait_ms=2000, callers=lambda: open_sessions
        )
        await batcher.start()
        start = time.perf_counter()
        await asyncio.gather(*(batcher.encode(crops(1, i)) for i in range(submit)))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return enc.sizes, elapsed

    sizes, elapsed = run(main(open_sessions=1, submit=1))
    assert sizes == [1] and elapsed < 1.0, "a lone session must not wait for company"
    sizes, elapsed = run(main(open_sessions=3, submit=3))
    assert sizes == [3] and elapsed < 1.0
    # a fourth open session that has nothing queued yet is waited for, up to max_wait
    sizes, elapsed = run(main(open_sessions=4, submit=3))
    assert sizes == [3] and elapsed >= 1.9


def test_a_stream_frame_is_not_starved_by_an_upload(model):
    async def main():
        enc = CountingEncoder(model)
        batcher = MicroBatcher(enc.encode, max_batch=4, max_wait_ms=0)
        await batcher.start()
        upload = asyncio.create_task(batcher.encode(crops(40, 2)))
        await asyncio.sleep(0)  # the upload is queued first
        await batcher.encode(crops(1, 3))
        calls_when_frame_done = len(enc.sizes)
        await upload
        await batcher.stop()
        return calls_when_frame_done, enc.sizes

    calls_when_frame_done, sizes = run(main())
    assert calls_when_frame_done <= 2  # served in the first or second batch, not the 11th
    assert sum(sizes) == 41 and max(sizes) == 4


def test_encoder_error_reaches_the_batch_and_the_queue_goes_on(model):
    async def main():
        batcher = MicroBatcher(model.encode, max_batch=8, max_wait_ms=20)
        await batcher.start()
        bad = crops(1, 0, size=32)  # the encoder takes 64 px crops: ONNX Runtime refuses this
        results = await asyncio.gather(batcher.encode(bad), return_exceptions=True)
        after = await batcher.encode(crops(2, 1))
        await batcher.stop()
        return results, after

    results, after = run(main())
    assert isinstance(results[0], Exception) and "64" in str(results[0])
    assert after.shape == (2, model.manifest.feature_dim)


def test_cancelled_caller_leaves_others_served(model):
    async def main():
        batcher = MicroBatcher(model.encode, max_batch=8, max_wait_ms=30)
        await batcher.start()
        gone = asyncio.create_task(batcher.encode(crops(3, 0)))
        kept = asyncio.create_task(batcher.encode(crops(2, 1)))
        await asyncio.sleep(0)
        gone.cancel()
        out = await kept
        await batcher.stop()
        return gone.cancelled(), out

    cancelled, out = run(main())
    assert cancelled and out.shape[0] == 2


def test_stop_fails_waiting_requests_and_refuses_new_ones(model):
    async def main():
        batcher = MicroBatcher(model.encode, max_batch=8, max_wait_ms=10_000)
        await batcher.start()
        waiting = asyncio.create_task(batcher.encode(crops(1, 0)))
        await asyncio.sleep(0.01)
        await batcher.stop()
        with pytest.raises(BatcherClosed):
            await waiting
        with pytest.raises(BatcherClosed):
            await batcher.encode(crops(1, 0))

    run(main())


def test_bad_arguments_are_refused(model):
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(model.encode, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        MicroBatcher(model.encode, max_wait_ms=-1)

    async def main():
        batcher = MicroBatcher(model.encode)
        await batcher.start()
        try:
            with pytest.raises(ValueError, match="crops"):
                await batcher.encode(np.zeros((0, 3, 64, 64), np.float32))
        finally:
            await batcher.stop()

    run(main())
