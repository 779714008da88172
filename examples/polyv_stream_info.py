"""Bit rate and frame rates of live Polyv channels over the last hour.

A channel that is not live comes back as a ChannelNotLiveError result; the batch
goes on. Runs against the built-in simulator; for the real service, give your app
id and app secret and leave out base_url.

    .venv/bin/python examples/polyv_stream_info.py
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import livestats
from livestats.testing import PolyvSim, Simulator


async def main() -> None:
    async with Simulator(polyv=PolyvSim(channels=3, offline_channels=1)) as sim:
        creds = sim.polyv
        end = datetime.now(timezone.utc)
        channels = [*sim.channel_ids, *sim.offline_channel_ids]
        async with livestats.PolyvClient(creds.app_id, creds.app_secret, base_url=sim.url) as polyv:
            async for result in polyv.get_stream_info_many(
                channels, start=end - timedelta(hours=1), end=end
            ):
                if isinstance(result.error, livestats.ChannelNotLiveError):
                    print(f"channel {result.key}: not live")
                elif result.value:
                    last = result.value[-1]
                    print(
                        f"channel {result.key}: {len(result.value)} samples, last at "
                        f"{last.time:%H:%M} {last.bit_rate} bps {last.video_frame_rate} fps"
                    )


if __name__ == "__main__":
    asyncio.run(main())
