"""Push durations of every stream of three domains over 70 days, from ChinaNetCenter.

The vendor takes one domain and at most 31 days per request; livestats splits the
query (here into 9 requests), sends them under the account's quota, and merges
the answers into one result per stream. Runs against the built-in simulator; for
the real service, give your username and API key and leave out base_url.

    .venv/bin/python examples/chinanetcenter_durations.py
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import livestats
from livestats.testing import ChinaNetCenterSim, Simulator


async def main() -> None:
    async with Simulator(chinanetcenter=ChinaNetCenterSim(domains=3, streams_per_domain=2)) as sim:
        creds = sim.chinanetcenter
        async with livestats.ChinaNetCenterClient(
            creds.username, creds.api_key, base_url=sim.url
        ) as cnc:
            date_to = cnc.today()
            date_from = date_to - timedelta(days=70)
            durations = await cnc.get_stream_durations(
                sim.domains, date_from=date_from, date_to=date_to
            )
        for d in durations:
            print(f"{d.domain} {d.stream}: {d.total} in {len(d.sessions)} pushes")
        print(f"{len(sim.arrivals('get_stream_durations'))} requests sent")


if __name__ == "__main__":
    asyncio.run(main())
