"""Bad input never escapes untyped and is never sent.

Every public constructor and method parameter gets arbitrary values, one parameter
at a time with the others valid: None, bools, ints (huge and negative included),
floats (NaN, infinities, -0.0), text (empty, whitespace, lone surrogates, control
characters, full-width digits, very long), bytes, containers, classes, functions,
naive and aware datetimes, dates. Each value is either accepted (the call then
succeeds against a :class:`~livestats.testing.MockTransport` that answers like the
vendor, so "accepted and sent" is told apart from "refused before sending") or
refused with a :class:`~livestats.ValidationError` before anything is sent. Any
other exception fails the test, and so does a request sent for a refused value.
The one exception by design: an unknown keyword argument to a client is a
TypeError, as Python makes it.

Each parameter is a *probe* (an async function of one value) in :data:`PROBES`,
run twice: by hypothesis on values drawn for it, and over :data:`CATALOGUE`, the
values that once escaped or are most likely to, every one of them every time.
"""

from __future__ import annotations

import inspect
import json
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livestats import (
    BatchResult,
    ChinaNetCenterClient,
    ClientSettings,
    Clock,
    ConfigurationError,
    HttpRequest,
    HttpResponse,
    LocalLimiter,
    PolyvClient,
    Quota,
    RedisLimiter,
    ResponseTooLargeError,
    RetryPolicy,
    TencentClient,
    ValidationError,
)
from livestats.providers.tencent import wire as tencent_wire
from livestats.testing import MockTransport

# About eighty parameters: a couple of dozen draws each keeps the file within seconds.
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Every client reads this wall clock, so dates and windows near it are accepted.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.astimezone(timezone(timedelta(hours=8))).date()  # ChinaNetCenter's GMT+08:00
CLOCK = Clock(wall=NOW.timestamp)

SDKAPPID = 1400000000
ROOM = "room-1"
ACCOUNT = "anchor-1"
DOMAIN = "live1.example.com"
STREAMS = {DOMAIN: ["live/show-1"]}
CHANNEL = "2477096"
REDIS_URL = "redis://localhost:6379/0"

# -- the vendors: a valid success for every request ------------------------------------------

TENCENT_PAYLOADS: dict[str, dict[str, Any]] = {
    "get_room_stats": {
        "TotalViewers": 10,
        "TotalGiftsSent": 2,
        "TotalGiftCoins": 30,
        "TotalUniqueGiftSenders": 1,
        "TotalLikesReceived": 5,
        "TotalMsgCount": 7,
    },
    "get_gift_count": {"Sequence": 1, "TotalCount": 2, "TotalCoins": 30, "GiftSenderCount": 1},
    "get_room_list": {"Next": "", "RoomList": []},
}


def _json(doc: object) -> HttpResponse:
    return HttpResponse(
        status=200, headers={"Content-Type": "application/json"}, body=json.dumps(doc).encode()
    )


def tencent_vendor(request: HttpRequest) -> HttpResponse:
    operation = request.url.rsplit("/", 1)[-1]
    envelope = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RequestId": "r1"}
    return _json({**envelope, "Response": TENCENT_PAYLOADS[operation]})


def chinanetcenter_vendor(request: HttpRequest) -> HttpResponse:
    return _json({"code": "0", "message": "success", "data": []})


def polyv_vendor(request: HttpRequest) -> HttpResponse:
    return _json({"code": 200, "status": "success", "message": "", "data": []})


# -- arbitrary values --------------------------------------------------------------------------


class Opaque:
    """An object of no type livestats knows."""


def _function() -> None:
    """A function where a value is expected."""


STRANGE_TEXT = [
    "",
    " ",
    "\t",
    "\n",
    "room-\ud800",
    "\udcff",
    "a\nb",
    "a\rb",
    "a\x00b",
    "\x1b[31m",
    "a\u2028b",
    "\u200b",
    "\ufeff",
    "\uff11\uff14\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # full-width 1400000000
    "\u0661\u0664\u0660\u0660",  # Arabic-Indic digits
    "1" * 5000,  # beyond int()'s limit on text
    "GMT+08:00\n",
    "GMT+\uff10\uff18:00",
    "x" * 5000,
    "\u00e9" * 30,
    "\U0001f600",
    "None",
    "0",
    "-1",
    "nan",
    "1e400",
    "http://",
    "redis://",
]
HUGE_INTS = [0, -1, 2**31, 2**32, 2**53 + 1, 2**63, 2**64, 10**20, 10**400, -(10**400)]
# Beyond Python's limit for int-to-text conversion: even repr() of these raises ValueError.
UNPRINTABLE_INTS = [10**5000, -(10**5000)]


def _unprintable_int(sign: int) -> int:
    return sign * 10**5000


# Made by a map: hypothesis shows a sampled_from's elements with repr().
ANY_UNPRINTABLE_INT = st.sampled_from([1, -1]).map(_unprintable_int)
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1e-300, 1e308, 1.5]
OBJECTS: list[object] = [
    object(),
    Opaque(),
    int,
    str,
    type,
    object,
    LocalLimiter,
    RetryPolicy,
    Quota,
    ClientSettings,
    Clock,
    MockTransport,
    print,
    len,
    _function,
    lambda: None,
    Ellipsis,
    NotImplemented,
    Decimal("1"),
    Decimal("nan"),
    Fraction(1, 3),
    1j,
    bytearray(b"x"),
    memoryview(b"x"),
    range(3),
    frozenset({1}),
    timedelta(seconds=1),
    timezone.utc,
    random.Random(0),
]
#: Every probe gets every one of these, every run.
CATALOGUE: list[object] = [
    None,
    True,
    False,
    *HUGE_INTS,
    *UNPRINTABLE_INTS,
    *SPECIAL_FLOATS,
    *STRANGE_TEXT,
    b"",
    b"room-1",
    [],
    ["room-\ud800", ROOM],
    [10**5000],
    (),
    (10**5000,),
    (ROOM, 10**5000),
    (ROOM, ACCOUNT, "x"),
    {},
    {"a": 1},
    {DOMAIN: "live/show-1"},
    {DOMAIN: [10**5000]},
    {10**5000: ["live/show-1"]},
    {1, 2},
    *OBJECTS,
    NOW.replace(tzinfo=None),
    NOW,
    datetime.min,
    datetime.max.replace(tzinfo=timezone(timedelta(hours=14))),
    TODAY,
    date.min,
    date.max,
]

ZONES = st.builds(
    timezone, st.timedeltas(timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59))
)
ANY_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(exclude_categories=[]), max_size=8),  # surrogates, controls
    st.sampled_from(STRANGE_TEXT),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    ANY_UNPRINTABLE_INT,
    st.floats(),
    ANY_TEXT,
    st.binary(max_size=8),
)
ANYTHING = st.one_of(
    SCALARS,
    st.sampled_from(SPECIAL_FLOATS),
    st.lists(SCALARS, max_size=3),
    st.tuples(SCALARS, SCALARS),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    st.sets(st.integers(), max_size=3),
    st.sampled_from(OBJECTS),
    st.datetimes(),
    st.datetimes(timezones=ZONES),
    st.dates(),
    st.timedeltas(),
)


def values(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values for one parameter: plausible ones (some right, some nearly) or anything."""
    return st.one_of(*plausible, ANYTHING)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


IDS = values(st.text(max_size=60), st.sampled_from([ROOM, " r ", "a" * 48, "a" * 49, "é" * 25]))
SECRETS = values(st.text(min_size=1, max_size=40))
SECONDS = values(st.floats(0, 400 * 86400), st.integers(-2, 400 * 86400))
POSITIVE_INTS = values(st.integers(-2, 2**40))
URLS = values(
    st.sampled_from(
        [
            "http://vendor.test",
            "https://vendor.test:8443/base/",
            "http://127.0.0.1:1",
            "http://[::1]:80",
            "http://vendor.test/?q=1",
            "http://vendor.test/#f",
            "http://vendor.test:99999",
            "http://[::1",
            "ftp://vendor.test",
            "vendor.test",
            "http:///path",
            "http://ex\u00e4mple.test",
            "http://a b.test",
        ]
    )
)
CONCURRENCY = values(st.none(), st.integers(-2, 200))
LIMITERS = values(st.builds(LocalLimiter))
RETRIES = values(st.builds(RetryPolicy.instant))
CLOCKS = values(st.just(CLOCK))
SETTINGS_OBJECTS = values(st.builds(ClientSettings))


def quotas(operations: Iterable[str]) -> st.SearchStrategy[Any]:
    quota = st.one_of(
        st.none(), st.builds(Quota, st.integers(1, 1000), st.floats(1e-3, 3600)), ANYTHING
    )
    names = st.sampled_from(sorted(operations)) | SCALARS.filter(_hashable)
    return values(st.dictionaries(names, quota, max_size=3))


async def aiter_of(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def containers(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A bulk call's input: good containers of mostly good items, or anything at all."""
    items = st.lists(item, max_size=4)
    return values(
        items,
        items.map(tuple),
        items.map(iter),
        items.map(aiter_of),
        st.sets(st.text(max_size=8), max_size=3),
        st.dictionaries(st.text(max_size=8), st.none(), max_size=3),
    )


# -- what every probe checks --------------------------------------------------------------------


async def collect(results: AsyncIterator[BatchResult[Any, Any]]) -> list[BatchResult[Any, Any]]:
    return [result async for result in results]


async def refused_or_done(
    transport: MockTransport, action: Callable[[], Awaitable[object]]
) -> bool:
    """Run ``action``: it succeeds, or raises a ValidationError with nothing sent (True)."""
    before = len(transport.requests)
    try:
        await action()
    except ValidationError:
        assert len(transport.requests) == before, "a ValidationError for a request that was sent"
        return True
    return False


async def check_batch(
    transport: MockTransport, start: Callable[[], Any], bad_item: Callable[[Any], bool]
) -> bool:
    """A bulk call: refused whole with nothing sent (True), or one result per item, bad
    ones (``bad_item``) refused with a ValidationError as their result and never sent."""
    before = len(transport.requests)
    try:
        results = await collect(start())
    except ValidationError:
        assert len(transport.requests) == before, "a refused batch sent requests"
        return True
    for result in results:
        assert result.error is None or isinstance(result.error, ValidationError), result.error
        if bad_item(result.key):
            assert not result.ok, f"accepted and sent: {_show(result.key)}"
    assert len(transport.requests) - before == sum(result.ok for result in results)
    return False


async def construct_then_call(
    build: Callable[[MockTransport], Any],
    call: Callable[[Any], Awaitable[object]] | None,
    handler: Callable[[HttpRequest], HttpResponse],
    *,
    small_answers: bool = False,
) -> bool:
    """Build a client with one odd argument: refused with a ValidationError (True), or it
    works (``call`` succeeds and sends one request). ``call=None``: construction only."""
    transport = MockTransport(handler)
    try:
        client = build(transport)
    except ValidationError:
        return True  # refused at construction: there is no client to send anything
    async with client:
        assert repr(client)  # an accepted client can be shown (logged), settings and all
        assert repr(client.settings)
        if call is None:
            return False
        try:
            await call(client)
        except ResponseTooLargeError:
            assert small_answers  # a tiny max_response_bytes, accepted: the answer is longer
    assert len(transport.requests) == 1
    return False


#: Tries one value; says whether it was refused (a ValidationError, nothing sent).
Probe = Callable[[Any], Awaitable[bool]]
#: Parameter name → (values to draw, the probe that tries one).
PROBES: dict[str, tuple[st.SearchStrategy[Any], Probe]] = {}
#: Parameter name → which of its values must be refused (the rest may go either way).
MUST_REFUSE: dict[str, Callable[[Any], bool]] = {}


def constructor_probes(
    cls: str,
    make: Callable[..., Any],
    call: Callable[[Any], Awaitable[object]],
    handler: Callable[[HttpRequest], HttpResponse],
    params: dict[str, tuple[Callable[[Any], dict[str, Any]], st.SearchStrategy[Any]]],
) -> None:
    """One probe per constructor parameter of a client; ``transport`` and ``session``
    are tried without a mock, so construction only (else the real vendor would be called)."""
    shared = {
        "limiter": (lambda v: {"limiter": v}, LIMITERS),
        "retry": (lambda v: {"retry": v}, RETRIES),
        "timeout": (lambda v: {"timeout": v}, SECONDS),
        "clock": (lambda v: {"clock": v}, CLOCKS),
        "max_response_bytes": (lambda v: {"max_response_bytes": v}, POSITIVE_INTS),
        "settings": (lambda v: {"settings": v}, SETTINGS_OBJECTS),
        "transport": (lambda v: {"transport": v}, ANYTHING),
        "session": (lambda v: {"transport": None, "session": v}, ANYTHING),
    }
    for name, (give, strategy) in {**params, **shared}.items():

        def probe(
            value: Any, give: Callable[[Any], dict[str, Any]] = give, name: str = name
        ) -> Awaitable[bool]:
            return construct_then_call(
                lambda t: make(t, **give(value)),
                None if name in ("transport", "session") else call,
                handler,
                small_answers=name == "max_response_bytes",
            )

        PROBES[f"{cls}.{name}"] = (strategy, probe)


def method_probe(
    name: str,
    make: Callable[[MockTransport], Any],
    handler: Callable[[HttpRequest], HttpResponse],
    call: Callable[[Any, Any], Awaitable[object]],
    strategy: st.SearchStrategy[Any],
) -> None:
    async def probe(value: Any) -> bool:
        transport = MockTransport(handler)
        async with make(transport) as client:
            return await refused_or_done(transport, lambda: call(client, value))

    PROBES[name] = (strategy, probe)


def batch_probe(
    name: str,
    make: Callable[[MockTransport], Any],
    handler: Callable[[HttpRequest], HttpResponse],
    start: Callable[[Any, Any], Any],
    strategy: st.SearchStrategy[Any],
    bad_item: Callable[[Any], bool] = lambda item: False,
) -> None:
    async def probe(value: Any) -> bool:
        transport = MockTransport(handler)
        async with make(transport) as client:
            return await check_batch(transport, lambda: start(client, value), bad_item)

    PROBES[name] = (strategy, probe)


def _with(build: Callable[..., object], name: str, **fixed: Any) -> Callable[[Any], object]:
    """``build`` with the probed value as its argument ``name`` (the others: ``fixed``)."""

    def call(value: Any) -> object:
        return build(**{**fixed, name: value})

    return call


def construction_probe(
    name: str, build: Callable[[Any], object], strategy: st.SearchStrategy[Any]
) -> None:
    async def probe(value: Any) -> bool:
        try:
            built = build(value)
        except ValidationError:
            return True
        assert repr(built)  # what was accepted can be shown (logged)
        return False

    PROBES[name] = (strategy, probe)


# -- what must be refused -----------------------------------------------------------------------


def bad_text(value: object) -> bool:
    """Not an id or a secret: not text, blank, unencodable, or holding a control character."""
    if not isinstance(value, str) or not value.strip():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return not value.isprintable()


def bad_room_id(value: object) -> bool:
    return bad_text(value) or len(str(value).encode()) > 48


def bad_pair(value: object) -> bool:
    if not isinstance(value, tuple) or len(value) != 2:
        return True
    return bad_room_id(value[0]) or bad_text(value[1])


def not_int(value: object, low: int = 1, high: int | None = None) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return True
    return value < low or (high is not None and value > high)


def not_seconds(value: object, *, zero: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    try:
        seconds = float(value)
    except OverflowError:
        return True
    return not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero)


def not_a_date(value: object) -> bool:
    """``None`` included: these probes give the other date, and one alone is refused."""
    return isinstance(value, datetime) or not isinstance(value, date)


def not_aware(value: object) -> bool:
    if value is None:
        return False
    return not isinstance(value, datetime) or value.utcoffset() is None


def not_digits(value: object) -> bool:
    if isinstance(value, str):
        return not (value.strip().isascii() and value.strip().isdigit())
    return not_int(value)


def not_url(value: object) -> bool:
    return bad_text(value) or not str(value).startswith(("http://", "https://"))


def not_concurrency(value: object) -> bool:
    return value is not None and not_int(value, 1, 10_000)


# -- Tencent --------------------------------------------------------------------------------------


def tencent(transport: MockTransport | None, /, **changes: Any) -> TencentClient:
    kwargs: dict[str, Any] = {
        "sdkappid": SDKAPPID,
        "identifier": "administrator",
        "secret_key": "tencent-secret-key",
        "transport": transport,
        "limiter": LocalLimiter(),
        "retry": RetryPolicy.instant(),
        "clock": CLOCK,
    }
    kwargs.update(changes)
    return TencentClient(**kwargs)


constructor_probes(
    "TencentClient",
    tencent,
    lambda client: client.get_room_stats(ROOM),
    tencent_vendor,
    {
        "sdkappid": (
            lambda v: {"sdkappid": v},
            values(
                st.integers(-5, 2**64),
                st.integers(1, 2**34).map(str),
                st.from_regex(r"\A\s*[0-9]{1,25}\s*\Z"),
                st.from_regex(r"\A[\uff10-\uff19]{1,10}\Z"),
            ),
        ),
        "identifier": (lambda v: {"identifier": v}, IDS),
        "secret_key": (lambda v: {"secret_key": v}, SECRETS),
        "usersig": (lambda v: {"secret_key": None, "usersig": v}, SECRETS),
        "region": (lambda v: {"region": v}, values(st.sampled_from(sorted(tencent_wire.HOSTS)))),
        "base_url": (lambda v: {"base_url": v}, URLS),
        "quotas": (
            lambda v: {"quotas": v},
            quotas(["get_room_stats", "get_gift_count", "get_room_list"]),
        ),
    },
)


async def _drain_rooms(client: TencentClient, page_size: Any) -> None:
    async for _ in client.iter_rooms(page_size=page_size):
        pass


PAIRS = st.one_of(
    st.tuples(IDS, IDS),
    st.tuples(st.just(ROOM), IDS),
    st.tuples(IDS, st.just(ACCOUNT)),
    st.lists(IDS, min_size=2, max_size=2),  # a list is not a pair
    st.tuples(IDS),
    st.tuples(IDS, IDS, IDS),
    ANYTHING,
)
method_probe(
    "TencentClient.get_room_stats.room_id",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_room_stats(v),
    IDS,
)
method_probe(
    "TencentClient.get_gift_count.room_id",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_gift_count(v, ACCOUNT),
    IDS,
)
method_probe(
    "TencentClient.get_gift_count.from_account",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_gift_count(ROOM, v),
    IDS,
)
method_probe(
    "TencentClient.iter_rooms.page_size",
    tencent,
    tencent_vendor,
    _drain_rooms,
    values(st.integers(-2, 25)),
)
batch_probe(
    "TencentClient.get_room_stats_many.room_ids",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_room_stats_many(v, concurrency=2),
    containers(IDS),
    bad_item=bad_room_id,
)
batch_probe(
    "TencentClient.get_room_stats_many.concurrency",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_room_stats_many([ROOM, ROOM], concurrency=v),
    CONCURRENCY,
)
batch_probe(
    "TencentClient.get_gift_count_many.pairs",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_gift_count_many(v, concurrency=2),
    containers(PAIRS),
    bad_item=bad_pair,
)
batch_probe(
    "TencentClient.get_gift_count_many.concurrency",
    tencent,
    tencent_vendor,
    lambda c, v: c.get_gift_count_many([(ROOM, ACCOUNT)], concurrency=v),
    CONCURRENCY,
)

# -- ChinaNetCenter ------------------------------------------------------------------------------


def chinanetcenter(transport: MockTransport | None, /, **changes: Any) -> ChinaNetCenterClient:
    kwargs: dict[str, Any] = {
        "username": "user",
        "api_key": "cnc-api-key",
        "transport": transport,
        "limiter": LocalLimiter(),
        "retry": RetryPolicy.instant(),
        "clock": CLOCK,
    }
    kwargs.update(changes)
    return ChinaNetCenterClient(**kwargs)


NO_BASIC = {"username": None, "api_key": None}
constructor_probes(
    "ChinaNetCenterClient",
    chinanetcenter,
    lambda client: client.get_stream_durations(STREAMS),
    chinanetcenter_vendor,
    {
        "username": (lambda v: {"username": v}, values(IDS, st.just("a:b"))),
        "api_key": (lambda v: {"api_key": v}, SECRETS),
        "access_key": (lambda v: {**NO_BASIC, "access_key": v, "secret_key": "sk"}, SECRETS),
        "secret_key": (lambda v: {**NO_BASIC, "access_key": "ak", "secret_key": v}, SECRETS),
        "base_url": (lambda v: {"base_url": v}, URLS),
        "time_zone": (
            lambda v: {"time_zone": v},
            values(
                st.sampled_from(["GMT+08:00", "GMT-12:00", "GMT+14:00", "GMT+15:00", "GMT+8:00"]),
                st.from_regex(r"\AGMT[+-][0-9]{2}:00\Z"),
            ),
        ),
        "max_domains_per_request": (lambda v: {"max_domains_per_request": v}, POSITIVE_INTS),
        "quotas": (lambda v: {"quotas": v}, quotas(["get_stream_durations"])),
    },
)

DATES = values(st.dates(TODAY - timedelta(days=220), TODAY + timedelta(days=5)), st.dates())
NAMES = values(
    st.from_regex(r"\A[a-z]{1,5}/[a-z0-9]{1,8}\Z"),
    st.sampled_from(["live/s1", "/x", "x/", "/", "a/b/c", " live/s1 ", "live/ s1", "live"]),
)
DOMAINS = values(st.sampled_from([DOMAIN, "live2.example.com", " live1.example.com "]))
STREAM_MAPS = values(
    st.dictionaries(
        DOMAINS.filter(_hashable), values(st.lists(NAMES, max_size=3)), min_size=1, max_size=3
    )
)
method_probe(
    "ChinaNetCenterClient.get_stream_durations.streams",
    chinanetcenter,
    chinanetcenter_vendor,
    lambda c, v: c.get_stream_durations(v),
    STREAM_MAPS,
)
method_probe(
    "ChinaNetCenterClient.get_stream_durations.date_from",
    chinanetcenter,
    chinanetcenter_vendor,
    lambda c, v: c.get_stream_durations(STREAMS, date_from=v, date_to=TODAY),
    DATES,
)
method_probe(
    "ChinaNetCenterClient.get_stream_durations.date_to",
    chinanetcenter,
    chinanetcenter_vendor,
    lambda c, v: c.get_stream_durations(STREAMS, date_from=TODAY - timedelta(days=100), date_to=v),
    DATES,
)


async def _check_period(client: ChinaNetCenterClient, date_from: Any, date_to: Any) -> None:
    """``check_period`` refuses with a ValidationError or accepts a period the vendor takes."""
    client.check_period(date_from, date_to)
    assert (date_from, date_to) == (None, None) or date_from <= date_to <= client.today()


method_probe(
    "ChinaNetCenterClient.check_period.date_from",
    chinanetcenter,
    chinanetcenter_vendor,
    lambda c, v: _check_period(c, v, TODAY),
    DATES,
)
method_probe(
    "ChinaNetCenterClient.check_period.date_to",
    chinanetcenter,
    chinanetcenter_vendor,
    lambda c, v: _check_period(c, TODAY - timedelta(days=3), v),
    DATES,
)

# -- Polyv ---------------------------------------------------------------------------------------


def polyv(transport: MockTransport | None, /, **changes: Any) -> PolyvClient:
    kwargs: dict[str, Any] = {
        "app_id": "polyv-app",
        "app_secret": "polyv-secret",
        "transport": transport,
        "limiter": LocalLimiter(),
        "retry": RetryPolicy.instant(),
        "clock": CLOCK,
    }
    kwargs.update(changes)
    return PolyvClient(**kwargs)


constructor_probes(
    "PolyvClient",
    polyv,
    lambda client: client.get_stream_info(CHANNEL),
    polyv_vendor,
    {
        "app_id": (lambda v: {"app_id": v}, IDS),
        "app_secret": (lambda v: {"app_secret": v}, SECRETS),
        "base_url": (lambda v: {"base_url": v}, URLS),
        "on_block": (lambda v: {"on_block": v}, values(st.sampled_from(["fail", "wait", "Fail"]))),
        "source_ip": (lambda v: {"source_ip": v}, values(st.ip_addresses().map(str))),
        "quotas": (lambda v: {"quotas": v}, quotas(["get_stream_info"])),
    },
)

MOMENTS = values(
    st.datetimes(
        (NOW - timedelta(days=8)).replace(tzinfo=None),
        (NOW + timedelta(days=1)).replace(tzinfo=None),
        timezones=ZONES,
    ),
    st.datetimes(timezones=ZONES),
    st.datetimes(),  # naive
)
method_probe(
    "PolyvClient.get_stream_info.channel_id",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info(v),
    IDS,
)
method_probe(
    "PolyvClient.get_stream_info.start",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info(CHANNEL, start=v),
    MOMENTS,
)
method_probe(
    "PolyvClient.get_stream_info.end",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info(CHANNEL, end=v),
    MOMENTS,
)
batch_probe(
    "PolyvClient.get_stream_info_many.channel_ids",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info_many(v, concurrency=2),
    containers(IDS),
    bad_item=bad_text,
)
batch_probe(
    "PolyvClient.get_stream_info_many.start",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info_many([CHANNEL], start=v),
    MOMENTS,
)
batch_probe(
    "PolyvClient.get_stream_info_many.end",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info_many([CHANNEL], end=v),
    MOMENTS,
)
batch_probe(
    "PolyvClient.get_stream_info_many.concurrency",
    polyv,
    polyv_vendor,
    lambda c, v: c.get_stream_info_many([CHANNEL, CHANNEL], concurrency=v),
    CONCURRENCY,
)

# -- the core's public classes -----------------------------------------------------------------


def _usable_quota(value: Any, *, field: str) -> Quota:
    """An accepted quota is usable: its rate and its text work."""
    quota = Quota(value, 1.0) if field == "limit" else Quota(5, value)
    assert quota.rate >= 0
    assert str(quota)
    return quota


construction_probe("Quota.limit", lambda v: _usable_quota(v, field="limit"), POSITIVE_INTS)
construction_probe("Quota.period", lambda v: _usable_quota(v, field="period"), SECONDS)


def _usable_policy(**fields: Any) -> RetryPolicy:
    """An accepted retry policy computes its waits."""
    policy = RetryPolicy(**fields)
    for retry in (1, 2, 10):
        assert 0 <= policy.backoff(retry, retry_after=1.0) < math.inf
    return policy


for _field, _strategy in {
    "attempts": POSITIVE_INTS,
    "timeout": SECONDS,
    "initial_wait": SECONDS,
    "max_wait": SECONDS,
    "max_retry_after": SECONDS,
    "rng": values(st.builds(random.Random, st.integers())),
}.items():
    construction_probe(f"RetryPolicy.{_field}", _with(_usable_policy, _field), _strategy)

for _field, _strategy in {
    "session": ANYTHING,
    "transport": values(st.builds(MockTransport, st.just(polyv_vendor))),
    "limiter": LIMITERS,
    "retry": RETRIES,
    "timeout": SECONDS,
    "clock": CLOCKS,
    "max_response_bytes": POSITIVE_INTS,
}.items():
    construction_probe(f"ClientSettings.{_field}", _with(ClientSettings, _field), _strategy)

construction_probe(
    "LocalLimiter.clock", lambda v: LocalLimiter(clock=v), values(st.just(CLOCK), st.just(len))
)

for _field, _strategy in {
    "url_or_client": values(
        st.sampled_from(
            [
                REDIS_URL,
                "rediss://cache.test:6380",
                "unix:///tmp/redis.sock",
                "redis://",
                "http://localhost:6379",
                "not a url",
                "redis://[::1",
            ]
        )
    ),
    "key_prefix": IDS,
    "lease": SECONDS,
    "ticket_ttl": SECONDS,
    "fallback": values(st.sampled_from(["error", "local", "Local"])),
    "max_jitter": values(st.floats(-1, 2), st.integers(-1, 2)),
    "clock": CLOCKS,
}.items():
    construction_probe(
        f"RedisLimiter.{_field}", _with(RedisLimiter, _field, url_or_client=REDIS_URL), _strategy
    )


construction_probe(
    "MockTransport.handler", lambda v: MockTransport(v), values(st.just(polyv_vendor))
)


for _client in ("TencentClient", "ChinaNetCenterClient", "PolyvClient"):
    MUST_REFUSE[f"{_client}.base_url"] = lambda v: v is not None and not_url(v)
    MUST_REFUSE[f"{_client}.timeout"] = lambda v: v is not None and not_seconds(v)
    MUST_REFUSE[f"{_client}.max_response_bytes"] = lambda v: v is not None and not_int(v)
    MUST_REFUSE[f"{_client}.quotas"] = lambda v: v is not None and not isinstance(v, dict)
for _name in (
    "TencentClient.identifier",
    "TencentClient.secret_key",
    "TencentClient.usersig",
    "TencentClient.get_gift_count.from_account",
    "ChinaNetCenterClient.username",
    "ChinaNetCenterClient.api_key",
    "ChinaNetCenterClient.access_key",
    "ChinaNetCenterClient.secret_key",
    "PolyvClient.app_id",
    "PolyvClient.app_secret",
    "PolyvClient.source_ip",
    "PolyvClient.get_stream_info.channel_id",
    "RedisLimiter.key_prefix",
):
    MUST_REFUSE[_name] = bad_text
for _name in ("get_stream_durations", "check_period"):
    MUST_REFUSE[f"ChinaNetCenterClient.{_name}.date_from"] = not_a_date
    MUST_REFUSE[f"ChinaNetCenterClient.{_name}.date_to"] = not_a_date
for _name in ("get_stream_info", "get_stream_info_many"):
    MUST_REFUSE[f"PolyvClient.{_name}.start"] = not_aware
    MUST_REFUSE[f"PolyvClient.{_name}.end"] = not_aware
for _name in (
    "TencentClient.get_room_stats_many.concurrency",
    "TencentClient.get_gift_count_many.concurrency",
    "PolyvClient.get_stream_info_many.concurrency",
):
    MUST_REFUSE[_name] = not_concurrency
for _field in ("timeout", "initial_wait", "max_wait", "max_retry_after"):
    MUST_REFUSE[f"RetryPolicy.{_field}"] = lambda v: not_seconds(v, zero=True)
MUST_REFUSE.update(
    {
        "TencentClient.sdkappid": not_digits,
        "TencentClient.region": lambda v: not isinstance(v, str) or v not in tencent_wire.HOSTS,
        "TencentClient.get_room_stats.room_id": bad_room_id,
        "TencentClient.get_gift_count.room_id": bad_room_id,
        "TencentClient.iter_rooms.page_size": lambda v: not_int(v, 1, 20),
        "ChinaNetCenterClient.time_zone": lambda v: not isinstance(v, str) or not v.isascii(),
        "ChinaNetCenterClient.max_domains_per_request": not_int,
        "ChinaNetCenterClient.get_stream_durations.streams": (
            lambda v: not isinstance(v, dict) or not v
        ),
        "PolyvClient.on_block": lambda v: not isinstance(v, str) or v not in ("fail", "wait"),
        "Quota.limit": not_int,
        "Quota.period": not_seconds,
        "RetryPolicy.attempts": not_int,
        "RetryPolicy.rng": lambda v: not isinstance(v, random.Random),
        "ClientSettings.timeout": not_seconds,
        "ClientSettings.max_response_bytes": not_int,
        "RedisLimiter.lease": not_seconds,
        "RedisLimiter.ticket_ttl": not_seconds,
    }
)


def _unprintable(value: object) -> bool:
    """Whether ``repr(value)`` raises: an int past 4300 digits, or a container holding one."""
    try:
        repr(value)
    except ValueError:
        return True
    return False


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROBES))
@SETTINGS
@given(data=st.data())
async def test_arbitrary_values_are_accepted_or_refused_before_sending(
    name: str, data: st.DataObject
) -> None:
    strategy, probe = PROBES[name]
    value = data.draw(strategy, label=name)
    await _try(name, probe, value)


async def _try(name: str, probe: Probe, value: Any) -> None:
    refused = await probe(value)
    if name in MUST_REFUSE and MUST_REFUSE[name](value):
        assert refused, f"accepted: {name} = {_show(value)}"


@pytest.mark.parametrize("name", list(PROBES))
async def test_every_catalogued_value_is_accepted_or_refused_before_sending(name: str) -> None:
    """The catalogue holds the values that once escaped: ``10**5000`` (whose repr raises
    ValueError) in a message, a ``concurrency`` of ``2**64`` (that many workers made up
    front), full-width digits in ``time_zone``, ``"1" * 5000`` as ``sdkappid``."""
    _, probe = PROBES[name]
    for value in CATALOGUE:
        try:
            await _try(name, probe, value)
        except Exception as exc:
            raise AssertionError(f"{name} = {_show(value)}: {exc!r}"[:500]) from exc


def _show(value: object) -> str:
    if _unprintable(value):
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "<?>"
    return repr(value)[:80]


async def _client_on(clock: Clock) -> None:
    transport = MockTransport(tencent_vendor)
    async with tencent(transport, clock=clock, limiter=LocalLimiter(clock=clock)) as client:
        await client.get_room_stats(ROOM)


async def _built(build: Callable[[], object]) -> object:
    built = build()
    return await built if inspect.isawaitable(built) else built


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: LocalLimiter(clock=10**5000),  # type: ignore[arg-type]
            id="local-limiter-clock-unprintable-int",
        ),
        pytest.param(
            lambda: repr(LocalLimiter(clock=len)),  # type: ignore[arg-type]
            id="local-limiter-clock-any-callable",
        ),
        pytest.param(
            lambda: MockTransport(None),  # type: ignore[arg-type]
            id="mock-transport-handler-none",
        ),
        pytest.param(
            lambda: MockTransport(polyv_vendor, timeout="soon"),  # type: ignore[arg-type]
            id="mock-transport-timeout-text",
        ),
        pytest.param(
            lambda: MockTransport(polyv_vendor, timeout=10**400),
            id="mock-transport-timeout-huge-int",
        ),
        pytest.param(
            lambda: _client_on(Clock(monotonic=None)),  # type: ignore[arg-type]
            id="clock-monotonic-none",
        ),
        pytest.param(
            lambda: _client_on(Clock(wall="now")),  # type: ignore[arg-type]
            id="clock-wall-text",
        ),
        pytest.param(
            lambda: RedisLimiter(REDIS_URL, max_jitter=None),  # type: ignore[arg-type]
            id="redis-limiter-max-jitter-none",
        ),
        pytest.param(
            lambda: RedisLimiter(REDIS_URL, max_jitter=Decimal("nan")),  # type: ignore[arg-type]
            id="redis-limiter-max-jitter-decimal-nan",
        ),
        pytest.param(
            lambda: RedisLimiter(REDIS_URL, fallback=10**5000),  # type: ignore[arg-type]
            id="redis-limiter-fallback-unprintable-int",
        ),
        pytest.param(
            lambda: RedisLimiter(REDIS_URL, clock=10**5000),  # type: ignore[arg-type]
            id="redis-limiter-clock-unprintable-int",
        ),
    ],
)
async def test_clocks_limiters_and_mock_transports_check_what_they_are_given(
    build: Callable[[], object],
) -> None:
    """Once escapes (an unprintable int in a message, any callable or none as a clock, a
    handler or timeout that is not one): each is now a ValidationError at construction."""
    with pytest.raises(ValidationError):
        await _built(build)


# -- plain cases ---------------------------------------------------------------------------------


def test_an_unknown_keyword_is_a_type_error() -> None:
    """By design: a misspelt keyword is Python's TypeError, as for any function."""
    with pytest.raises(TypeError, match="timout"):
        tencent(MockTransport(tencent_vendor), timout=5)


@pytest.mark.parametrize(
    "build",
    [
        lambda: tencent(None, sdkappid="\uff11\uff14\uff10\uff10"),
        lambda: tencent(None, sdkappid="1" * 5000),
        lambda: tencent(None, sdkappid=2**64),
        lambda: chinanetcenter(None, time_zone="GMT+\uff10\uff18:00"),
        lambda: chinanetcenter(None, time_zone="GMT+\u0660\u0668:00"),
        lambda: chinanetcenter(None, time_zone=10**5000),
        lambda: Quota(2**64, 1.0),
        lambda: Quota(-(10**5000), 1.0),
        lambda: RetryPolicy(timeout=10**5000),
        lambda: RetryPolicy(attempts=-(10**5000)),
        lambda: ClientSettings(max_response_bytes=-(10**5000)),
        lambda: ClientSettings(max_response_bytes=10**5000),
        lambda: RetryPolicy(attempts=10**5000),
    ],
    ids=[
        "sdkappid-full-width",
        "sdkappid-5000-digits",
        "sdkappid-beyond-63-bits",
        "time-zone-full-width-digits",
        "time-zone-arabic-indic-digits",
        "time-zone-unprintable-int",
        "quota-limit-beyond-2**53",
        "quota-limit-unprintable-int",
        "retry-timeout-unprintable-int",
        "retry-attempts-unprintable-int",
        "max-response-bytes-unprintable-int",
        "max-response-bytes-beyond-63-bits",
        "retry-attempts-beyond-63-bits",
    ],
)
def test_once_escaped_values_are_configuration_errors(build: Callable[[], object]) -> None:
    """Accepted (and sent, or failed later untyped) or crashed in the message, before."""
    with pytest.raises(ConfigurationError):
        build()


async def test_huge_concurrency_is_refused_before_any_worker_starts() -> None:
    """``concurrency=2**64`` made that many workers up front: the loop never came back."""
    transport = MockTransport(tencent_vendor)
    async with tencent(transport) as client:
        for many in (2**64, 10**5000):
            with pytest.raises(ValidationError, match="concurrency"):
                client.get_room_stats_many([ROOM], concurrency=many)
    assert transport.requests == []


async def test_a_bad_pair_holding_an_unprintable_int_is_its_items_validation_error() -> None:
    """The refusal's message once raised ValueError from repr() of the pair."""
    transport = MockTransport(tencent_vendor)
    async with tencent(transport) as client:
        pairs: list[Any] = [(10**5000,), (ROOM, ACCOUNT)]
        results = await collect(client.get_gift_count_many(pairs))
    errors = [r.error for r in results if not r.ok]
    assert len(errors) == 1
    assert isinstance(errors[0], ValidationError)
    assert len(transport.requests) == 1


async def test_naive_datetimes_and_dates_where_the_other_is_expected() -> None:
    transport = MockTransport(polyv_vendor)
    async with polyv(transport) as client:
        for moment in (NOW.replace(tzinfo=None), NOW.date()):
            with pytest.raises(ValidationError):
                await client.get_stream_info(CHANNEL, start=moment)  # type: ignore[arg-type]
    async with chinanetcenter(transport) as cnc:
        with pytest.raises(ValidationError):
            await cnc.get_stream_durations(STREAMS, date_from=NOW, date_to=NOW)
    assert transport.requests == []
