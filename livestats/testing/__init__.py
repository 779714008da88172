"""An offline stand-in for the vendors' APIs, for testing code that uses livestats.

:class:`Simulator` serves the documented endpoints of Tencent Cloud Live,
ChinaNetCenter (Wangsu) and Polyv on ``127.0.0.1``, enforces the vendors' quotas the
way the vendors do (every arrival counts, in a sliding window), records when each
request arrived, and can inject faults or scripted answers::

    from livestats.testing import Simulator

    async with Simulator(rooms=200, seed=0) as sim:
        ...  # point a client at sim.url with sim.tencent's credentials
        assert sim.violations("get_room_stats") == 0

With pytest-asyncio installed, the ``livestats_simulator`` fixture (from the pytest
plugin this package registers) gives each test a fresh, started simulator.
"""

from livestats.testing._chinanetcenter import ChinaNetCenterCredentials
from livestats.testing._measure import PacingReport, pacing_report
from livestats.testing._polyv import PolyvCredentials
from livestats.testing._redis import redis_server
from livestats.testing._simulator import Faults, Simulator, max_in_window
from livestats.testing._tencent import TencentCredentials

__all__ = [
    "ChinaNetCenterCredentials",
    "Faults",
    "PacingReport",
    "PolyvCredentials",
    "Simulator",
    "TencentCredentials",
    "max_in_window",
    "pacing_report",
    "redis_server",
]
