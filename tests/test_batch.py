"""Bulk helpers: every input exactly once, lazy input, bounded work, clean early exit."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from livestats import BatchResult, NotFoundError, Quota, ValidationError
from livestats._core.batch import fan_out
from livestats.testing import Simulator
from tests.conftest import MakeClient, client_tasks, collect


async def test_every_input_comes_back_exactly_once(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client(quotas={"get_room_stats": None})
    good = sim.room_ids[:20]
    inputs: list[object] = [*good, *good[:5], "", "missing-room", 42, "x" * 60]
    results = await collect(client.get_room_stats_many(inputs))  # type: ignore[arg-type]
    assert Counter(repr(r.key) for r in results) == Counter(repr(i) for i in inputs)
    by_outcome = Counter(type(r.error).__name__ if r.error else "ok" for r in results)
    assert by_outcome == {"ok": 25, "ValidationError": 3, "NotFoundError": 1}
    for result in results:
        assert result.ok == (result.error is None) == (result.value is not None)
    # Invalid ids never reached the provider.
    assert len(sim.arrivals("get_room_stats")) == 26


async def test_gift_pairs_come_back_as_keys(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    pairs: list[object] = [(room, "anchor") for room in sim.room_ids[:5]] + [("only-one",)]
    results = await collect(client.get_gift_count_many(pairs))  # type: ignore[arg-type]
    assert {r.key for r in results if r.ok} == set(pairs[:5])
    (bad,) = [r for r in results if not r.ok]
    assert isinstance(bad.error, ValidationError)


async def test_async_iterables_are_accepted(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()

    async def ids() -> AsyncIterator[str]:
        for room in sim.room_ids[:10]:
            await asyncio.sleep(0)
            yield room

    results = await collect(client.get_room_stats_many(ids(), concurrency=3))
    assert sorted(r.key for r in results) == sorted(sim.room_ids[:10])


async def test_input_is_read_lazily_and_work_stays_bounded(
    sim: Simulator, make_client: MakeClient
) -> None:
    """A generator of a million ids: only about `concurrency` are taken ahead of the consumer."""
    client = make_client(quotas={"get_room_stats": None})
    taken = 0

    def million() -> Iterator[str]:
        nonlocal taken
        for i in range(1_000_000):
            taken += 1
            yield sim.room_ids[i % len(sim.room_ids)]

    concurrency = 8
    got = 0
    async with contextlib.aclosing(
        client.get_room_stats_many(million(), concurrency=concurrency)
    ) as results:
        async for result in results:
            assert result.ok
            got += 1
            if got == 50:
                break
    # In flight plus finished-but-not-taken never exceeds `concurrency`.
    assert taken <= got + concurrency + 1


async def test_breaking_out_cancels_work_and_leaks_no_task(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(quotas={"get_room_stats": Quota(5, 60.0)})  # most calls must wait
    before = client_tasks()
    async with contextlib.aclosing(client.get_room_stats_many(sim.room_ids)) as results:
        async for _ in results:
            break
    await asyncio.sleep(0)
    assert client_tasks() - before == set()
    # The limiter still serves later calls: the 5 slots hold only what really was sent.
    assert len(sim.arrivals("get_room_stats")) <= 5


async def test_breaking_out_without_aclosing_cleans_up_soon(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(quotas={"get_room_stats": Quota(5, 60.0)})
    before = client_tasks()
    async for _ in client.get_room_stats_many(sim.room_ids):
        break
    gc.collect()
    for _ in range(20):  # the loop's async-generator finalizer runs aclose() as a task
        await asyncio.sleep(0.01)
        if not client_tasks() - before:
            break
    assert client_tasks() - before == set()


async def test_cancelling_the_consumer_cancels_in_flight_work(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(quotas={"get_room_stats": Quota(3, 60.0)})
    before = client_tasks()

    async def consume() -> None:
        async with contextlib.aclosing(client.get_room_stats_many(sim.room_ids)) as results:
            async for _ in results:
                pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)  # three sent, the rest waiting on the 60 s quota
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client_tasks() - before == set()
    # A waiter that was cancelled consumed nothing: a fresh key is unaffected, and the
    # cancelled batch sent exactly what its three slots allowed.
    assert len(sim.arrivals("get_room_stats")) == 3


async def test_a_failing_input_ends_the_batch_after_the_finished_items() -> None:
    def ids() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("input broke")

    async def echo(x: int) -> int:
        return x

    seen: list[BatchResult[int, int]] = []

    async def consume() -> None:
        async for result in fan_out(ids(), echo, concurrency=1):
            seen.append(result)

    with pytest.raises(RuntimeError, match="input broke"):
        await consume()
    assert [r.value for r in seen] == [1, 2]


async def test_an_unexpected_exception_is_still_a_result() -> None:
    async def flaky(x: int) -> int:
        if x == 3:
            raise KeyError("bug")
        return x

    results = await collect(fan_out(range(6), flaky, concurrency=2))
    assert sorted(r.key for r in results) == list(range(6))
    (bad,) = [r for r in results if not r.ok]
    assert isinstance(bad.error, KeyError)
    with pytest.raises(KeyError):
        bad.unwrap()


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
async def test_concurrency_must_be_a_positive_int(
    make_client: MakeClient, concurrency: object
) -> None:
    client = make_client()
    with pytest.raises(ValidationError, match="concurrency"):
        client.get_room_stats_many(["a"], concurrency=concurrency)  # type: ignore[arg-type]


async def test_not_an_iterable_is_a_validation_error(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(ValidationError, match="iterable"):
        await collect(client.get_room_stats_many(42))  # type: ignore[arg-type]


async def test_not_found_items_do_not_stop_the_batch(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    ids = ["nope-1", sim.room_ids[0], "nope-2", sim.room_ids[1]]
    results = {r.key: r for r in await collect(client.get_room_stats_many(ids))}
    assert isinstance(results["nope-1"].error, NotFoundError)
    assert results[sim.room_ids[1]].ok
