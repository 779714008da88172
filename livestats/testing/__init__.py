"""An offline stand-in for the vendors' APIs, for testing code that uses livestats.

:class:`Simulator` serves the documented endpoints of Tencent Cloud Live,
ChinaNetCenter (Wangsu) and Polyv on ``127.0.0.1``, enforces the vendors' quotas the
way the vendors do (every arrival counts, in a sliding window), records when each
request arrived, and can inject faults or scripted answers. Each vendor is set up
by its own settings object (:class:`TencentSim`, :class:`ChinaNetCenterSim`,
:class:`PolyvSim`; omitted: its defaults)::

    from livestats.testing import ChinaNetCenterSim, Simulator, TencentSim

    sim = Simulator(
        seed=0,
        tencent=TencentSim(rooms=200),
        chinanetcenter=ChinaNetCenterSim(domains=3, time_format="epoch_ms"),
    )
    async with sim:
        ...  # point a client at sim.url with sim.tencent's credentials
        assert sim.violations("get_room_stats") == 0

:class:`MockTransport` runs a client against a function instead of a server.

The pytest plugin this package registers (:mod:`livestats.testing.pytest_plugin`)
gives a test a started simulator: the ``livestats_simulator`` fixture, set up by the
test's ``@pytest.mark.livestats_simulator(rooms=..., seed=..., faults=...)`` mark,
and ``livestats_simulator_factory`` for several. They need pytest-asyncio (strict
mode: mark the test ``@pytest.mark.asyncio``) and say so when it is missing.
"""

from livestats.testing._chinanetcenter import ChinaNetCenterCredentials, ChinaNetCenterSim
from livestats.testing._measure import PacingReport, pacing_report
from livestats.testing._mock import MockTransport
from livestats.testing._polyv import PolyvCredentials, PolyvSim
from livestats.testing._redis import RedisServer, redis_server
from livestats.testing._simulator import Faults, Simulator, max_in_window
from livestats.testing._tencent import TencentCredentials, TencentSim

__all__ = [
    "ChinaNetCenterCredentials",
    "ChinaNetCenterSim",
    "Faults",
    "MockTransport",
    "PacingReport",
    "PolyvCredentials",
    "PolyvSim",
    "RedisServer",
    "Simulator",
    "TencentCredentials",
    "TencentSim",
    "max_in_window",
    "pacing_report",
    "redis_server",
]
