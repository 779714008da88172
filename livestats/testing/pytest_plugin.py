"""The pytest plugin livestats registers (entry point ``pytest11``, name ``livestats``).

It provides one fixture, ``livestats_simulator``: a started
:class:`livestats.testing.Simulator` with default settings, closed after the test.

pytest loads this module in every project where livestats is installed, so it must
never break a test run: the fixture is async, so it exists only when pytest-asyncio
is installed (without it, this module defines nothing), and the simulator itself is
imported only when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livestats.testing import Simulator

try:
    import pytest_asyncio
except ImportError:
    pass
else:

    @pytest_asyncio.fixture
    async def livestats_simulator() -> AsyncIterator[Simulator]:
        """A started :class:`~livestats.testing.Simulator` with default settings (``seed=0``)."""
        from livestats.testing import Simulator

        async with Simulator() as simulator:
            yield simulator
