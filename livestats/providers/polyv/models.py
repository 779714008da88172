"""Polyv results. Field meanings are the vendor's (see each docstring)."""

from __future__ import annotations

from datetime import datetime

import attrs

from livestats._core.convert import wire

__all__ = ["StreamInfoSample"]


@attrs.frozen(kw_only=True)
class StreamInfoSample:
    """One sample of a live channel's push stream on Tencent CDN (``get_stream_info``).

    The vendor sends the numbers as strings although it documents integers; they
    arrive here as ints. The wire's ``timestamp`` field (documented nowhere, null
    in the vendor's sample) is ignored.
    """

    #: The channel asked about (not on the wire: the answer does not repeat it).
    channel_id: str = attrs.field(metadata=wire("channelId"))
    #: The push path (the vendor's ``streamUrl``, e.g. ``recordf``).
    stream_url: str = attrs.field(metadata=wire("streamUrl"))
    #: Video bit rate in bits per second.
    bit_rate: int = attrs.field(metadata=wire("bitRate", count=True))
    #: Audio frames per second.
    audio_frame_rate: int = attrs.field(metadata=wire("audioFrameRate", count=True))
    #: Video frames per second.
    video_frame_rate: int = attrs.field(metadata=wire("videoFrameRate", count=True))
    #: When the sample was taken: aware, in UTC+8 (Beijing time) as the vendor sends it.
    time: datetime = attrs.field(metadata=wire("time"))
