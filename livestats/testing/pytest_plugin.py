"""The pytest plugin livestats registers (entry point ``pytest11``, name ``livestats``).

Two fixtures, for tests of code that uses livestats:

- ``livestats_simulator``: a started :class:`livestats.testing.Simulator`, closed
  after the test. Default settings (``seed=0``, 200 rooms, no faults), or those of
  the test's ``@pytest.mark.livestats_simulator(rooms=50, seed=3, faults=...)``
  mark: ``rooms`` is a shortcut for ``tencent=TencentSim(rooms=...)``, and every
  other keyword goes to :class:`~livestats.testing.Simulator`.
- ``livestats_simulator_factory``: an async function taking the same keywords and
  returning a started simulator, for a test that wants several or decides its
  settings as it runs; all are closed after the test.

Both are async fixtures, so they need pytest-asyncio. They are declared with
``pytest_asyncio.fixture`` and work in its default strict mode (mark the test
``@pytest.mark.asyncio``) as in auto mode. Without pytest-asyncio (not installed,
or ``-p no:asyncio``) they exist all the same and fail the test with a message
saying what to install, rather than pytest's "fixture not found".

pytest loads this module in every project where livestats is installed, so it must
never break a test run: it imports nothing at import time beyond pytest, and the
simulator only when a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from livestats.testing import Simulator

#: What the fixtures say when there is no pytest-asyncio to run them.
NEEDS_ASYNCIO = (
    "the {name} fixture is async and needs pytest-asyncio: pip install pytest-asyncio, "
    "then mark the test @pytest.mark.asyncio (or set asyncio_mode = auto)"
)

MARK = "livestats_simulator"


def _simulator(**settings: Any) -> Simulator:
    """A :class:`Simulator` from the fixtures' keywords (``rooms``: Tencent's room count)."""
    from livestats.testing import Simulator, TencentSim

    rooms = settings.pop("rooms", None)
    if rooms is not None:
        if "tencent" in settings:
            raise TypeError("give rooms= or tencent=TencentSim(...), not both")
        settings["tencent"] = TencentSim(rooms=rooms)
    return Simulator(**settings)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}(rooms=None, seed=0, faults=None, **settings): "
        "the settings of the livestats_simulator fixture's simulator",
    )
    if config.pluginmanager.has_plugin("asyncio"):
        config.pluginmanager.register(_async_fixtures(), "livestats-fixtures")
    else:
        config.pluginmanager.register(_MissingAsyncio(), "livestats-fixtures")


class _MissingAsyncio:
    """The fixtures' names, failing with what to install."""

    @pytest.fixture
    def livestats_simulator(self) -> None:
        pytest.fail(NEEDS_ASYNCIO.format(name="livestats_simulator"), pytrace=False)

    @pytest.fixture
    def livestats_simulator_factory(self) -> None:
        pytest.fail(NEEDS_ASYNCIO.format(name="livestats_simulator_factory"), pytrace=False)


Factory = Callable[..., Awaitable["Simulator"]]


def _async_fixtures() -> object:
    import pytest_asyncio

    class AsyncFixtures:
        @pytest_asyncio.fixture
        async def livestats_simulator(
            self, request: pytest.FixtureRequest
        ) -> AsyncIterator[Simulator]:
            """A started simulator: defaults, or the test's ``livestats_simulator`` mark."""
            mark = request.node.get_closest_marker(MARK)
            settings = dict(mark.kwargs) if mark is not None else {}
            async with _simulator(**settings) as simulator:
                yield simulator

        @pytest_asyncio.fixture
        async def livestats_simulator_factory(self) -> AsyncIterator[Factory]:
            """``await factory(rooms=50, faults=Faults(rate=0.1))``: a started simulator."""
            started: list[Simulator] = []

            async def factory(**settings: Any) -> Simulator:
                simulator = _simulator(**settings)
                await simulator.start()
                started.append(simulator)
                return simulator

            try:
                yield factory
            finally:
                for simulator in started:
                    await simulator.close()

    return AsyncFixtures()
