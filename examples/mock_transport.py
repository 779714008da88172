"""Test your own code against a function instead of a server: MockTransport.

The handler sees every signed request and answers it; here it plays a Tencent
Cloud Live that knows two rooms, is briefly overloaded, and then refuses a room it
has never heard of. No socket is opened, and the client's quota pacing, retries
and decoding run exactly as they do against the real service.

    .venv/bin/python examples/mock_transport.py
"""

from __future__ import annotations

import asyncio
import json

import livestats
from livestats.testing import MockTransport

ROOMS = {"room-a": 120, "room-b": 7}


def vendor(request: livestats.HttpRequest) -> livestats.HttpResponse:
    """A tiny Tencent: the first request meets an overloaded gateway, then it answers."""
    if len(transport.requests) == 1:
        return livestats.HttpResponse(status=502, body=b"<title>502 Bad Gateway</title>")
    room = json.loads(request.body or b"{}")["RoomId"]
    if room not in ROOMS:
        doc = {"ActionStatus": "FAIL", "ErrorCode": 100004, "ErrorInfo": "room does not exist"}
    else:
        doc = {
            "ActionStatus": "OK",
            "ErrorCode": 0,
            "ErrorInfo": "",
            "RequestId": f"req-{len(transport.requests)}",
            "Response": {
                "TotalViewers": ROOMS[room],
                "TotalGiftsSent": 3,
                "TotalGiftCoins": 30,
                "TotalUniqueGiftSenders": 2,
                "TotalLikesReceived": 9,
                "TotalMsgCount": 11,
            },
        }
    return livestats.HttpResponse(status=200, body=json.dumps(doc).encode())


transport = MockTransport(vendor)


async def main() -> None:
    async with livestats.TencentClient(
        1400000000,
        "administrator",
        secret_key="not-a-real-secret",
        transport=transport,
        retry=livestats.RetryPolicy.instant(),
        limiter=livestats.LocalLimiter(),
    ) as client:
        async for result in client.get_room_stats_many(["room-a", "room-b", "room-x"]):
            if result.value is not None:
                print(f"{result.key}: {result.value.total_viewers} viewer entries")
            else:
                print(f"{result.key}: {type(result.error).__name__}")
    print(f"{len(transport.requests)} requests, the 502 retried once")


if __name__ == "__main__":
    asyncio.run(main())
