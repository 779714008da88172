"""Every room's statistics from Tencent Cloud Live, at the vendor's quota.

Runs against the built-in simulator; for the real service, build the client with
your SDKAppID, admin identifier and secret key and leave out base_url.

    .venv/bin/python examples/tencent_room_stats.py
"""

from __future__ import annotations

import asyncio

import livestats
from livestats.testing import Simulator, TencentSim


async def main() -> None:
    async with Simulator(tencent=TencentSim(rooms=50)) as sim:
        creds = sim.tencent
        async with livestats.TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url
        ) as client:
            room_ids = [room.room_id async for room in client.iter_rooms()]
            async for result in client.get_room_stats_many(room_ids):
                if result.value is not None:
                    print(f"{result.key}: {result.value.total_viewers} viewer entries")
                else:
                    print(f"{result.key}: failed: {result.error}")


if __name__ == "__main__":
    asyncio.run(main())
