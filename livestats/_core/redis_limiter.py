"""A limiter shared by every process and host that uses one Redis: the same slots, in Redis.

:class:`~livestats.LocalLimiter` keeps a quota's N slots in one process. When a
collection job runs as several workers, or several services use one account,
each process would spend the whole quota on its own. :class:`RedisLimiter` keeps
the slots in Redis instead, with the same rules:

- a request holds a slot from before it is sent until its outcome is known; the
  slot is free again one period after that, by the **Redis server's clock**
  (``TIME``), so hosts whose clocks disagree still share one window;
- a slot whose holder vanished (a crashed process) frees itself ``lease`` seconds
  plus one period after it was taken: ``lease`` must exceed the longest attempt
  (a client's ``timeout``);
- waiters are served first come, first served across processes: each takes a
  ticket, ordered by the server time it first asked, and a slot goes to a ticket
  only when every earlier ticket has been served. A waiter keeps its ticket alive
  by asking again at least every ``ticket_ttl / 2`` seconds; a ticket not renewed
  for ``ticket_ttl`` (its process died) is dropped;
- every check and record is one Lua script: atomic on the server.

A waiter sleeps until the slot its place in line needs can free (the server says
when; a slot still in flight frees a period after its answer at the earliest),
plus a little jitter so processes do not ask at the same instant: no tight
polling. Redis memory stays bounded: a quota key holds at most N slots and one
ticket per waiter, and every key expires once unused.

Keys, for a quota key ``Q`` (``tencent:1400000000:get_room_stats``, say) and the
default prefix::

    livestats:{Q}:slots    sorted set: slot token -> when it is free (server µs)
    livestats:{Q}:queue    sorted set: waiting ticket -> when it first asked
    livestats:{Q}:alive    sorted set: waiting ticket -> when it lapses
    livestats:{Q}:pause    string: server µs until which nothing is handed out

The braces are a Redis Cluster hash tag: one quota's keys live on one node.

Redis unreachable or failing: :class:`~livestats.LimiterUnavailableError` by
default, never "unlimited". ``fallback="local"`` instead paces the call with an
in-process :class:`~livestats.LocalLimiter` and logs a warning once per outage;
that keeps the process within the quota, but no longer the group.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from yarl import URL

from livestats._core.clock import Clock
from livestats._core.limiter import LocalLimiter, Paused, Permit
from livestats._core.loops import close_at_loop_shutdown
from livestats._core.quota import Quota
from livestats._core.validate import check_seconds, check_text
from livestats.errors import ConfigurationError, LimiterUnavailableError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisLimiter"]

logger = logging.getLogger("livestats")

_GRANTED, _WAIT, _PAUSED = 1, 0, 2
_US = 1_000_000

# KEYS: slots, queue, alive, pause. ARGV: token, limit, period_us, lease_us, ttl_us.
# Returns {status, microseconds to wait}.
_ACQUIRE = """
local slots, queue, alive, pause = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token = ARGV[1]
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local keep = math.ceil((lease + period + ttl) / 1000)

local function touch()
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keep) end
end

-- Waiters that stopped asking have lost their place; slots whose time is up are free.
local lapsed = redis.call('ZRANGEBYSCORE', alive, '-inf', now)
for i = 1, #lapsed, 500 do
  redis.call('ZREM', queue, unpack(lapsed, i, math.min(i + 499, #lapsed)))
end
redis.call('ZREMRANGEBYSCORE', alive, '-inf', now)
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)

-- A place in line, kept from the first time this token asked.
if not redis.call('ZSCORE', queue, token) then
  redis.call('ZADD', queue, now, token)
end
redis.call('ZADD', alive, now + ttl, token)

local paused_until = tonumber(redis.call('GET', pause) or '0')
if paused_until > now then
  touch()
  return {2, paused_until - now}
end

local free = limit - redis.call('ZCARD', slots)
local rank = redis.call('ZRANK', queue, token)
if rank < free then
  redis.call('ZADD', slots, now + lease + period, token)
  redis.call('ZREM', queue, token)
  redis.call('ZREM', alive, token)
  touch()
  return {1, 0}
end

-- The slot this place in line waits for: the (rank - free)-th to free up. One in
-- flight frees a period after its answer at the earliest.
local wait = period
local nth = redis.call('ZRANGE', slots, rank - free, rank - free, 'WITHSCORES')
if nth[2] then wait = math.max(0, math.min(tonumber(nth[2]) - now, period)) end
touch()
return {0, wait}
"""

# KEYS: slots. ARGV: token, sent (1/0), period_us, lease_us, ttl_us.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[2] == '1' then
  -- Re-added even if its lease lapsed meanwhile: counting it again is the safe side.
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local keep = math.ceil((tonumber(ARGV[4]) + tonumber(ARGV[3]) + tonumber(ARGV[5])) / 1000)
redis.call('PEXPIRE', KEYS[1], keep)
return 1
"""

# KEYS: pause. ARGV: microseconds.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = now + tonumber(ARGV[1])
if ends > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ends, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1)
end
return 1
"""

# KEYS: slots, queue, alive. ARGV: token. A waiter that gave up, or a grant nobody took.
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


class _RedisPermit:
    __slots__ = ("_key", "_limiter", "_period", "_released", "_token")

    def __init__(self, limiter: RedisLimiter, key: str, token: str, period: float) -> None:
        self._limiter = limiter
        self._key = key
        self._token = token
        self._period = period
        self._released = False

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        if self._released:
            return
        self._released = True
        await self._limiter._release(
            self._key, self._token, self._period + unanswered_for, sent=sent
        )

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<RedisPermit {self._key!r} {state}>"


class RedisLimiter:
    """The :class:`~livestats.Limiter` for quotas shared across processes and hosts.

    ``url_or_client`` is a Redis URL (``redis://host:6379/0``; the limiter makes
    and closes its own client, one per event loop) or a ``redis.asyncio.Redis``
    you own. ``key_prefix`` namespaces the keys: services that should share a
    quota use the same prefix (and the same quota keys, which are the same when
    their clients are configured alike).

    ``lease``: seconds a slot may stay in flight before it counts as abandoned
    (longer than any attempt). ``ticket_ttl``: seconds a waiter's place in line
    survives without it asking again. ``fallback``: ``"error"`` (default) raises
    :class:`~livestats.LimiterUnavailableError` when Redis fails; ``"local"`` paces
    with an in-process limiter instead and logs a warning.

    ``clock``: the :class:`~livestats.Clock` waits between polls sleep on (slot
    times are always the Redis server's own ``TIME``).

    Needs the ``redis`` package (``pip install 'livestats[redis]'``) and Redis 5 or
    later (scripts that read ``TIME`` and then write).
    """

    def __init__(
        self,
        url_or_client: str | Redis,
        *,
        key_prefix: str = "livestats",
        lease: float = 60.0,
        ticket_ttl: float = 10.0,
        fallback: Literal["error", "local"] = "error",
        max_jitter: float = 0.01,
        clock: Clock | None = None,
    ) -> None:
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError(f"clock must be a livestats.Clock, not {clock!r}")
        #: Waits between polls sleep on this clock (slot times are the Redis server's).
        self._sleep = (clock or Clock()).sleep
        try:
            import redis.asyncio  # noqa: F401  (checked here so the error comes early)
        except ImportError:
            raise ConfigurationError(
                "RedisLimiter needs the redis package: pip install 'livestats[redis]'"
            ) from None
        if isinstance(url_or_client, str):
            self._url: str | None = _check_redis_url(url_or_client)
            self._client: Redis | None = None
        else:
            if not callable(getattr(url_or_client, "register_script", None)):
                raise ConfigurationError("url_or_client must be a URL or a redis.asyncio.Redis")
            self._url = None
            self._client = url_or_client
        self._prefix = check_text(key_prefix, "key_prefix", error=ConfigurationError)
        self._lease = check_seconds(lease, "lease")
        self._ticket_ttl = check_seconds(ticket_ttl, "ticket_ttl")
        if fallback not in ("error", "local"):
            raise ConfigurationError(f"fallback must be 'error' or 'local', not {fallback!r}")
        self._fallback = fallback
        if not 0 <= max_jitter < 1:
            raise ConfigurationError("max_jitter must be from 0 to 1 second")
        self._max_jitter = max_jitter
        self._local = LocalLimiter()
        self._outage = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._scripts: dict[str, AsyncScript] = {}

    def __repr__(self) -> str:
        where = "its own client" if self._url is not None else "a given client"
        return f"<RedisLimiter prefix={self._prefix!r} {where} fallback={self._fallback!r}>"

    def keys(self, key: str) -> dict[str, str]:
        """The Redis keys of quota key ``key``: slots, queue, alive and pause."""
        tag = f"{self._prefix}:{{{key}}}"
        return {part: f"{tag}:{part}" for part in ("slots", "queue", "alive", "pause")}

    async def aclose(self) -> None:
        """Close the Redis client this limiter made (a client passed in is left open)."""
        if self._url is not None and self._client is not None:
            client, self._client, self._scripts = self._client, None, {}
            await client.aclose()
        if self._guard is not None:
            await self._guard.aclose()
            self._guard = None

    async def __aenter__(self) -> RedisLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the Limiter interface ---------------------------------------------------------

    async def acquire(self, key: str, quota: Quota, *, wait_if_paused: bool = True) -> Permit:
        token = secrets.token_hex(12)
        keys = self.keys(key)
        args: list[str | int] = [
            token,
            quota.limit,
            _micro(quota.period),
            _micro(self._lease),
            _micro(self._ticket_ttl),
        ]
        try:
            while True:
                status, wait_us = await self._run(
                    "acquire", [keys["slots"], keys["queue"], keys["alive"], keys["pause"]], args
                )
                if status == _GRANTED:
                    self._recovered()
                    return _RedisPermit(self, key, token, quota.period)
                wait = wait_us / _US
                if status == _PAUSED and not wait_if_paused:
                    await self._leave(keys, token)
                    raise Paused(wait)
                await self._sleep(self._nap(wait))
        except asyncio.CancelledError:
            await self._leave_quietly(keys, token)
            raise
        except LimiterUnavailableError:
            if self._fallback == "error":
                raise
            self._warn_outage()
            return await self._local.acquire(key, quota, wait_if_paused=wait_if_paused)

    async def pause(self, key: str, seconds: float) -> None:
        try:
            await self._run("pause", [self.keys(key)["pause"]], [_micro(seconds)])
        except LimiterUnavailableError:
            if self._fallback == "error":
                raise
            self._warn_outage()
        await self._local.pause(key, seconds)  # for calls paced locally during an outage

    # -- internals ---------------------------------------------------------------------

    async def _release(self, key: str, token: str, hold: float, *, sent: bool) -> None:
        """Free the slot ``hold`` seconds from now (server time), or at once if unsent."""
        args: list[str | int] = [
            token,
            1 if sent else 0,
            _micro(hold),
            _micro(self._lease),
            _micro(self._ticket_ttl),
        ]
        try:
            await self._run("release", [self.keys(key)["slots"]], args)
        except LimiterUnavailableError as err:
            # The slot stays taken in Redis until its lease lapses: the safe side. A
            # failed release must not hide the outcome of the request it paced.
            logger.warning("livestats: could not release a slot of %s: %s", key, err)

    def _nap(self, wait: float) -> float:
        """Sleep until the slot can free, renewing the ticket in time, plus jitter."""
        return min(wait, self._ticket_ttl / 2) + random.uniform(0, self._max_jitter)

    async def _leave(self, keys: dict[str, str], token: str) -> None:
        await self._run("leave", [keys["slots"], keys["queue"], keys["alive"]], [token])

    async def _leave_quietly(self, keys: dict[str, str], token: str) -> None:
        # Best effort while being cancelled: a ticket left behind lapses after
        # ticket_ttl, a grant nobody took after lease + period.
        try:
            await asyncio.shield(self._leave(keys, token))
        except (Exception, asyncio.CancelledError):
            logger.debug("livestats: could not leave the queue of %s", keys["queue"])

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        from redis.exceptions import RedisError

        try:
            script = await self._script(name)
            return await script(keys=list(keys), args=list(args))
        except (RedisError, OSError) as exc:
            raise LimiterUnavailableError(
                f"Redis failed: {type(exc).__name__}: {exc}", retryable=False
            ) from exc

    async def _script(self, name: str) -> AsyncScript:
        loop = asyncio.get_running_loop()
        if self._url is not None and (self._client is None or self._loop is not loop):
            await self._open(loop)
        script = self._scripts.get(name)
        if script is None:
            assert self._client is not None
            source = {"acquire": _ACQUIRE, "release": _RELEASE, "pause": _PAUSE, "leave": _LEAVE}
            script = self._scripts[name] = self._client.register_script(source[name])
        return script

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        """A client of our own for this loop (redis-py's connections belong to one loop)."""
        from redis.asyncio import Redis

        old = self._client
        assert self._url is not None
        self._client = Redis.from_url(self._url)
        self._scripts = {}
        self._loop = loop
        if old is not None:
            await old.aclose()
        self._guard = close_at_loop_shutdown(self._client.aclose)
        await self._guard.__anext__()

    def _warn_outage(self) -> None:
        if not self._outage:
            self._outage = True
            logger.warning(
                "livestats: Redis is unavailable; pacing with a local limiter until it is back "
                "(this process keeps to the quota, the group of processes may not)"
            )

    def _recovered(self) -> None:
        if self._outage:
            self._outage = False
            logger.warning("livestats: Redis is back; pacing with it again")


def _micro(seconds: float) -> int:
    return max(1, round(seconds * _US))


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _check_redis_url(value: str) -> str:
    """A URL redis-py can connect to: ``redis://``, ``rediss://`` (TLS) or ``unix://``."""
    text = check_text(value, "url", error=ConfigurationError)
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or url.scheme not in _REDIS_SCHEMES or not (url.host or url.path.strip("/")):
        raise ConfigurationError(
            "url must be a Redis URL such as redis://localhost:6379/0 "
            f"(schemes: {', '.join(_REDIS_SCHEMES)}), not {text[:80]!r}"
        )
    return text
