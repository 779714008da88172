"""The settings every provider client shares, checked once, in one place.

``ClientSettings`` holds what is not about a vendor: how to send (session or
transport), how to pace (limiter), how to retry, how long an attempt may take,
which clock to read, how large an answer may be. Build one and pass it to every
client (``settings=``), or pass the same names as keyword arguments; keywords
given beside ``settings`` win.
"""

from __future__ import annotations

from typing import Any, TypedDict

import aiohttp
import attrs

from livestats._core.clock import Clock
from livestats._core.http import Transport
from livestats._core.limiter import Limiter
from livestats._core.retry import RetryPolicy
from livestats._core.validate import check_limiter, check_max_wait, check_seconds, shown
from livestats.errors import ConfigurationError
from livestats.events import EventHandler

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "ClientOptions", "ClientSettings"]

#: The largest answer read by default: 16 MiB after decompression. The largest real
#: answers are ChinaNetCenter's month of push sessions and Polyv's week of samples
#: (neither vendor states a size; a week at one sample per 10 s is about 12 MB).
#: Tencent's are a few KB. Eight answers at the limit stay well inside 300 MB.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def _session(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, aiohttp.ClientSession):
        raise ConfigurationError("session must be an aiohttp.ClientSession")


def _transport(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, type) or not isinstance(value, Transport)):
        raise ConfigurationError(
            "transport must be an instance with send(request, *, operation, max_bytes), "
            "timeout and close(), like livestats.AiohttpTransport"
        )


def _limiter(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_limiter(value)


def _handler(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, type) or not callable(value)):
        raise ConfigurationError(
            f"on_event must be a function of the event, not a {type(value).__name__}"
        )


def _retry(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, RetryPolicy):
        raise ConfigurationError(f"retry must be a livestats.RetryPolicy, not {shown(value)}")


def _clock(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Clock):
        raise ConfigurationError(f"clock must be a livestats.Clock, not {shown(value)}")


def _byte_count(value: object) -> int:
    # At most 2**63 - 1 (sys.maxsize, the usual "no limit"): far beyond any memory, and
    # a larger int could be past what repr() of these settings can show.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ConfigurationError(
            f"max_response_bytes must be an int from 1 to 2**63 - 1, not {shown(value)}"
        )
    return value


def _max_wait(value: object) -> float | None:
    return None if value is None else check_max_wait(value, "max_wait")


def _timeout(value: object) -> float:
    return check_seconds(value, "timeout")


@attrs.frozen(kw_only=True)
class ClientSettings:
    """What every client shares: transport, limiter, retry policy, timeout, clock, size limit.

    - ``session``: an aiohttp session the client sends through and never closes
      (without one the client makes its own, per event loop, and closes it).
    - ``transport``: anything with the :class:`~livestats.Transport` interface,
      instead of aiohttp (``livestats.testing.MockTransport`` in tests); give it
      or ``session``, not both.
    - ``limiter``: the quota limiter; ``None`` is the process-wide
      :func:`~livestats.shared_limiter`.
    - ``retry``: a :class:`~livestats.RetryPolicy`.
    - ``timeout``: seconds one attempt may take, send to last byte.
    - ``clock``: the :class:`~livestats.Clock` everything reads and sleeps on
      (the running loop's by default).
    - ``max_response_bytes``: the longest answer read, counted after
      decompression (see :data:`DEFAULT_MAX_RESPONSE_BYTES`).
    - ``on_event``: a function (plain or ``async``) given every
      :mod:`livestats.events` event: metrics, logs, alerts. It never breaks a call.
    - ``max_wait``: how long each attempt may wait for its quota slot, pauses
      included, unless a call says otherwise (``None``: as long as it takes). A
      call that cannot have one in time raises :class:`~livestats.RateLimitedError`
      with ``retry_after`` and sends nothing; at once when the limiter can tell.
    """

    session: aiohttp.ClientSession | None = attrs.field(default=None, validator=_session)
    transport: Transport | None = attrs.field(default=None, validator=_transport)
    limiter: Limiter | None = attrs.field(default=None, validator=_limiter)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, validator=_retry)
    timeout: float = attrs.field(default=10.0, converter=_timeout)
    clock: Clock = attrs.field(factory=Clock, validator=_clock)
    max_response_bytes: int = attrs.field(default=DEFAULT_MAX_RESPONSE_BYTES, converter=_byte_count)
    on_event: EventHandler | None = attrs.field(default=None, validator=_handler)
    max_wait: float | None = attrs.field(default=None, converter=_max_wait)

    def __attrs_post_init__(self) -> None:
        if self.session is not None and self.transport is not None:
            raise ConfigurationError("give session or transport, not both")

    @classmethod
    def resolve(cls, options: dict[str, Any]) -> ClientSettings:
        """Settings from a client's keyword arguments: ``settings=`` with the others on top.

        A keyword given as ``None`` means "the default" (or the ``settings`` value),
        as it always has for these arguments.
        """
        options = dict(options)
        base = options.pop("settings", None)
        if base is not None and not isinstance(base, ClientSettings):
            raise ConfigurationError(
                f"settings must be a livestats.ClientSettings, not {shown(base)}"
            )
        unknown = sorted(set(options) - _NAMES)
        if unknown:
            raise TypeError(
                f"unexpected keyword argument {unknown[0]!r} "
                f"(client settings are: {', '.join(sorted(_NAMES))})"
            )
        given = {name: value for name, value in options.items() if value is not None}
        if base is None:
            return cls(**given)
        return attrs.evolve(base, **given) if given else base


_NAMES = frozenset(a.name for a in attrs.fields(ClientSettings))


class ClientOptions(TypedDict, total=False):
    """The keyword arguments every client takes besides its vendor's own (see ClientSettings)."""

    settings: ClientSettings | None
    session: aiohttp.ClientSession | None
    transport: Transport | None
    limiter: Limiter | None
    retry: RetryPolicy | None
    timeout: float
    clock: Clock | None
    max_response_bytes: int
    on_event: EventHandler | None
    max_wait: float | None
