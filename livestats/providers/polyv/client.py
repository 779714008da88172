"""``PolyvClient``: stream monitor info of Polyv live channels on Tencent CDN."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from yarl import URL

from livestats._core.batch import BatchResult, fan_out
from livestats._core.client import BaseClient, Wait, check_items
from livestats._core.engine import Signing
from livestats._core.http import HttpRequest, HttpResponse
from livestats._core.outcome import Outcome, Refusal, Value
from livestats._core.poll import Sweep, check_every, fixed_items, poll
from livestats._core.quota import Quota
from livestats._core.sharing import Priority
from livestats._core.validate import check_base_url, check_text, shown
from livestats.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialsExpiredError,
    LiveStatsError,
    RateLimitedError,
    ValidationError,
)
from livestats.providers.polyv import wire
from livestats.providers.polyv.models import StreamInfoSample
from livestats.providers.polyv.quotas import DEFAULT_QUOTAS

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from livestats._core.settings import ClientOptions

__all__ = ["PolyvClient"]

GET_STREAM_INFO = "get_stream_info"
ON_BLOCK = ("fail", "wait")

#: The vendor serves the last 7 days; without ``start`` it starts 3 hours before now.
MAX_LOOKBACK = timedelta(days=7)
DEFAULT_WINDOW = timedelta(hours=3)
#: A poller's sweep asks for the samples of this long before it (a few samples of a
#: stream sampled every few minutes), at most :data:`MAX_POLL_WINDOW`.
POLL_WINDOW = timedelta(minutes=10)
MAX_POLL_WINDOW = timedelta(days=1)


class PolyvClient(BaseClient):
    """A client for one Polyv app (``app_id`` and its ``app_secret``).

    Polyv's quota is per **source IP** across the whole API host, all app ids
    together, so every operation of every PolyvClient spends one limiter key,
    ``polyv:<source_ip>:<host>``: through the process-wide default limiter, all
    clients in the process share it. Pass a limiter shared across processes (a
    :class:`~livestats.RedisLimiter`) to share it wider. ``source_ip`` names the IP
    the requests leave from: processes that share a Redis but reach Polyv from
    different IPs give each IP its own name; the default, ``"default"``, puts them
    all on one quota, the safe side. ``quotas=`` overrides the quota (``None``
    turns pacing off).

    Going over the quota makes Polyv block the IP for 5 minutes. The client then
    stops sending for that long (every client sharing the limiter does too), and
    ``on_block`` says what calls do meanwhile: ``"fail"`` (default) fails them at
    once with a :class:`~livestats.RateLimitedError` whose ``until`` says when the
    block ends; ``"wait"`` holds them until it is over, beyond ``retry.timeout``
    (the refused call retries at once, then waits the pause out; it needs a retry
    left). Other clients sharing the limiter see the block in the limiter only, so
    an unpaced one of them (quota ``None``) sends into it.

    Every request is dated with ``timestamp``, which Polyv accepts for 3 minutes.
    If Polyv refuses it, the client learns the offset of its clock from the
    answer's ``Date`` header and retries once; later calls use the offset too. The
    header has 1 s resolution, so the offset is only good to about a second (plus
    the network delay), well inside the 3 minutes.

    ``base_url`` replaces ``https://api.polyv.net`` (simulator, proxy). The other
    keyword arguments are the settings every client shares
    (:class:`~livestats.ClientSettings`). A refused signature (a wrong app id or
    secret) stops the client: it sends nothing more with those credentials.
    """

    provider = wire.PROVIDER
    default_quotas = DEFAULT_QUOTAS
    #: A refusal blocks the IP for 5 minutes: a lowered limit is never probed upward.
    probe_up = False
    #: How long Polyv blocks the IP after a quota breach (the vendor says 5 minutes).
    #: A class attribute, not an argument: only a scaled-down test has reason to change it.
    block_seconds: ClassVar[float] = wire.BLOCK_SECONDS

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        *,
        base_url: str | None = None,
        quotas: Mapping[str, Quota | None] | None = None,
        on_block: Literal["fail", "wait"] = "fail",
        source_ip: str = "default",
        **options: Unpack[ClientOptions],
    ) -> None:
        self._app_id = check_text(app_id, "app_id", error=ConfigurationError)
        self._app_secret = check_text(app_secret, "app_secret", error=ConfigurationError)
        if on_block not in ON_BLOCK:
            raise ConfigurationError(f"on_block must be 'fail' or 'wait', not {shown(on_block)}")
        self._on_block = on_block
        self._source_ip = check_text(source_ip, "source_ip", error=ConfigurationError)
        self._base_url = check_base_url(base_url) if base_url is not None else wire.BASE_URL
        self._host = URL(self._base_url).host
        super().__init__(dict(options), quotas=quotas, secrets=(self._app_secret,))

    def __repr__(self) -> str:
        return (
            f"<PolyvClient app_id={self._app_id!r} base_url={self._base_url!r} "
            f"app_secret=[secure] on_block={self._on_block!r}>"
        )

    def quota_key(self, operation: str) -> str:
        """``polyv:<source_ip>:<host>`` for every operation and app id: the IP's quota."""
        return f"{self.provider}:{self._source_ip}:{self._host}"

    # -- operations ------------------------------------------------------------------

    async def get_stream_info(
        self,
        channel_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> list[StreamInfoSample]:
        """Push-stream samples of one live channel on Tencent CDN, oldest window 7 days back.

        ``channel_id`` is a string (the vendor's type; an int is refused rather than
        guessed at). ``start`` and ``end`` are aware datetimes; either may be left
        out, and the vendor then uses 3 hours before now and now. Raises
        :class:`ChannelNotLiveError` for a channel that is not live on Tencent CDN.
        ``priority`` and ``max_wait`` say how the call waits for its quota slot.
        """
        channel_id = check_text(channel_id, "channel_id")
        fields = {"channelId": channel_id, **self._window(start, end)}
        wait = self._wait(priority, max_wait)
        return await self._call(GET_STREAM_INFO, fields, channel_id, wait)

    def get_stream_info_many(
        self,
        channel_ids: Iterable[str] | AsyncIterable[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        concurrency: int | None = None,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[BatchResult[str, list[StreamInfoSample]], None]:
        """Stream info of many channels, one :class:`~livestats.BatchResult` per id, as they finish.

        ``channel_ids`` is read lazily; a bad id or a channel that is not live comes
        back as a result carrying its error, and the batch goes on. A bad window is
        the whole batch's: it raises ValidationError here, before anything runs
        (each call checks it again against the time it is sent).
        """
        check_items(channel_ids, "channel_ids")
        self._window(start, end)
        self._wait(priority, max_wait)

        async def one(channel_id: str) -> list[StreamInfoSample]:
            return await self.get_stream_info(
                channel_id, start=start, end=end, priority=priority, max_wait=max_wait
            )

        return fan_out(
            channel_ids, one, concurrency=self._concurrency(GET_STREAM_INFO, concurrency)
        )

    def poll_stream_info(
        self,
        channel_ids: Iterable[str],
        *,
        every: float,
        window: timedelta = POLL_WINDOW,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[Sweep[str, list[StreamInfoSample]], None]:
        """Stream info of channels every ``every`` seconds: one :class:`~livestats.Sweep` per pass.

        Each sweep asks, for every channel, for the samples of the ``window``
        (default 10 minutes, at most a day) before the sweep starts: the channel's
        latest figures are its last sample. A channel that is not live comes back
        as a result carrying :class:`~livestats.ChannelNotLiveError`, and the next
        sweep asks again. ``channel_ids`` (a plain iterable) is read once here,
        duplicates dropped. Sweep k starts ``k * every`` seconds after the first,
        on the client's clock; a sweep the quota cannot fit in ``every`` is
        reported (:class:`~livestats.events.SweepLate`) and the sweeps then run
        back to back. The arguments are checked here, before anything is sent.
        """
        seconds = check_every(every)
        self._wait(priority, max_wait)
        if not isinstance(window, timedelta) or window <= timedelta(0) or window > MAX_POLL_WINDOW:
            raise ValidationError(
                f"window must be a timedelta of at most one day, not {shown(window)}"
            )
        check_items(channel_ids, "channel_ids")
        if not isinstance(channel_ids, Iterable):
            raise ValidationError(
                "channel_ids must be a plain iterable (it is read once and swept every time)"
            )
        channels = list(dict.fromkeys(check_text(c, "channel_id") for c in channel_ids))
        if not channels:
            raise ValidationError("channel_ids is empty: nothing to poll")

        def sweep(
            keys: Sequence[str],
        ) -> AsyncGenerator[BatchResult[str, list[StreamInfoSample]], None]:
            now = datetime.fromtimestamp(self._clock.wall(), tz=timezone.utc)
            # No end: the vendor's default, its own now.
            return self.get_stream_info_many(
                keys, start=now - window, priority=priority, max_wait=max_wait
            )

        return poll(
            provider=self.provider,
            every=seconds,
            clock=self._clock,
            sink=self._engine.sink,
            quotas=self._quotas,
            items=fixed_items(channels),
            demand=lambda n: {GET_STREAM_INFO: n},
            sweep=sweep,
        )

    # -- input -------------------------------------------------------------------------

    def _window(self, start: datetime | None, end: datetime | None) -> dict[str, str]:
        """The ``startTime``/``endTime`` to send, after checking the window the vendor will use.

        "Now" is the local clock, uncorrected: the frame the caller's datetimes were
        most likely made in. Polyv judges "the last 7 days" by its own clock, so a
        start right at the edge on a skewed machine may still be refused there.
        """
        now = datetime.fromtimestamp(self._clock.wall(), tz=timezone.utc)
        first = _check_aware(start, "start")
        last = _check_aware(end, "end")
        _check_window(
            first if first is not None else now - DEFAULT_WINDOW,
            last if last is not None else now,
            now,
            start_given=first is not None,
        )
        return {
            name: str(wire.epoch_ms(moment))
            for name, moment in (("startTime", first), ("endTime", last))
            if moment is not None
        }

    # -- the call path -----------------------------------------------------------------

    async def _call(
        self, operation: str, fields: dict[str, str], channel_id: str, wait: Wait
    ) -> list[StreamInfoSample]:
        def sign(signing: Signing) -> HttpRequest:
            return wire.signed_request(
                self._base_url,
                wire.STREAM_INFO_PATH,
                fields,
                app_id=self._app_id,
                app_secret=self._app_secret,
                timestamp_ms=round(signing.now * 1000),
            )

        def classify(response: HttpResponse) -> Outcome[list[StreamInfoSample]]:
            try:
                data = wire.open_envelope(response, operation)
                return Value(value=[self._sample(item, channel_id) for item in data])
            except LiveStatsError as err:
                return self._refusal(err, response)

        return await self._run(
            operation,
            sign=sign,
            classify=classify,
            wait=wait,
            wait_if_paused=self._on_block == "wait",
        )

    def _refusal(self, err: LiveStatsError, response: HttpResponse) -> Refusal:
        """What a Polyv error answer asks for.

        - ``invalid timestamp.``: the local clock is off Polyv's by more than its
          3 minutes. With a usable ``Date`` header the engine dates requests by
          Polyv's clock from then on and retries once (the header has 1 s
          resolution: good to about a second plus the network delay);
        - the IP block (``qps exceeds number of calls``): nothing is sent for the
          block's length, on this quota key (every client sharing the limiter)
          and on this client (so an unpaced client stops too); in "fail" mode
          the error is final and calls meeting either pause fail at once with
          the block's end, in "wait" mode the call retries and waits it out;
        - a refused signature: the credentials are refused for good.
        """
        if isinstance(err, CredentialsExpiredError):
            polyv_now = wire.server_time(response)
            offset = None if polyv_now is None else polyv_now - self._clock.wall()
            return Refusal(error=err, clock_offset=offset)
        if isinstance(err, RateLimitedError):
            seconds = self.block_seconds
            return Refusal(
                error=err._evolve(retry_after=seconds, retryable=self._on_block == "wait"),
                retry=self._on_block == "wait",
                pause_operation=seconds,
                pause_client=seconds,
            )
        if isinstance(err, AuthenticationError):
            return Refusal.of(err, credentials_refused=True)
        return Refusal.of(err)

    def _sample(self, item: Any, channel_id: str) -> StreamInfoSample:
        if isinstance(item, dict):
            item = {**item, "channelId": channel_id}
        return self._structure(wire.CONVERTER, item, StreamInfoSample, GET_STREAM_INFO)


def _check_aware(moment: object, name: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise ValidationError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.utcoffset() is None:
        raise ValidationError(
            f"{name} must be an aware datetime (give it a tzinfo, e.g. timezone.utc): "
            "a naive one could mean any zone"
        )
    return moment


def _check_window(start: datetime, end: datetime, now: datetime, *, start_given: bool) -> None:
    """The vendor's rules for the window it will use (defaults filled in), checked here.

    "At most 7 days long" needs no check of its own: a window that starts within
    the last 7 days and does not end in the future is never longer.
    """
    if start > end:
        which = "start" if start_given else "the vendor's default start (3 hours before now)"
        raise ValidationError(f"{which} {start.isoformat()} is after end {end.isoformat()}")
    if start < now - MAX_LOOKBACK:
        raise ValidationError("start must be within the last 7 days (the vendor keeps no more)")
    if end > now:
        raise ValidationError(f"end {end.isoformat()} is in the future")
