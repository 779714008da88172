"""Whatever comes back, every decoder raises a LiveStatsError or returns a result.

Each provider gets one function that runs the whole path a client runs on an
answer (envelope, structuring, and for ChinaNetCenter the merge and its time
parsing), fed with arbitrary JSON, well-shaped answers with wrong types in their
fields, truncated bodies, random bytes and HTML pages, under random HTTP statuses.
Any exception that is not a :class:`~livestats.LiveStatsError` fails the test.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestats import LiveStatsError, ResponseDecodingError
from livestats._core.convert import structure
from livestats._core.http import HttpResponse
from livestats.errors import CredentialsExpiredError
from livestats.providers.chinanetcenter import query
from livestats.providers.chinanetcenter import wire as cnc_wire
from livestats.providers.polyv import wire as polyv_wire
from livestats.providers.polyv.models import StreamInfoSample
from livestats.providers.tencent import wire as tencent_wire
from livestats.providers.tencent.models import GiftCount, RoomPage, RoomStats

# Five kinds of body per provider, 100 examples each: 500 answers per provider.
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True)

# -- the decode paths, as the clients run them ---------------------------------------------

TENCENT_OPERATIONS = ("get_room_stats", "get_gift_count", "get_room_list")
ROOM = "room-1"
ACCOUNT = "anchor-1"


def decode_tencent(response: HttpResponse, operation: str) -> object:
    """``TencentClient``: the envelope, then the payload into the operation's result class."""
    payload, request_id = tencent_wire.open_envelope(response, operation)
    context: dict[str, Any] = {
        "provider": tencent_wire.PROVIDER,
        "operation": operation,
        "request_id": request_id,
    }
    if operation == "get_room_stats":
        data = {**payload, "RoomId": ROOM}
        return structure(tencent_wire.CONVERTER, data, RoomStats, **context)
    if operation == "get_gift_count":
        data = {**payload, "RoomId": ROOM, "From_Account": ACCOUNT}
        return structure(tencent_wire.CONVERTER, data, GiftCount, **context)
    return structure(tencent_wire.CONVERTER, payload, RoomPage, **context)


DOMAINS = ("a.example.com", "b.example.com")
WANTED = {domain: ["live/s1", "live/s2"] for domain in DOMAINS}
ZONES = ("GMT+08:00", "GMT-12:00", "GMT+14:00", "GMT+00:00")


def decode_chinanetcenter(responses: Sequence[HttpResponse], time_zone: str) -> object:
    """``ChinaNetCenterClient.get_stream_durations``: each answer, then the merge of all."""
    reports = [
        structure(
            cnc_wire.CONVERTER,
            cnc_wire.open_answer(response),
            cnc_wire.WireReport,
            provider=cnc_wire.PROVIDER,
            operation=cnc_wire.OPERATION,
            request_id=None,
        )
        for response in responses
    ]
    try:
        return query.merge(WANTED, reports, cnc_wire.parse_time_zone(time_zone))
    except ValueError as exc:  # what the client catches around the merge
        raise ResponseDecodingError(
            f"unreadable push session time: {exc}",
            provider=cnc_wire.PROVIDER,
            operation=cnc_wire.OPERATION,
        ) from exc


POLYV_OPERATION = "get_stream_info"
CHANNEL = "3151318"


def decode_polyv(response: HttpResponse) -> object:
    """``PolyvClient.get_stream_info``: the envelope (and the Date header when refused), samples."""
    try:
        data = polyv_wire.open_envelope(response, POLYV_OPERATION)
    except CredentialsExpiredError:
        polyv_wire.server_time(response)  # the client learns Polyv's clock from it
        raise
    return [
        structure(
            polyv_wire.CONVERTER,
            {**item, "channelId": CHANNEL} if isinstance(item, dict) else item,
            StreamInfoSample,
            provider=polyv_wire.PROVIDER,
            operation=POLYV_OPERATION,
            request_id=None,
        )
        for item in data
    ]


def only_livestats_errors(decode: Callable[[], object]) -> None:
    with contextlib.suppress(LiveStatsError):  # anything else propagates and fails the test
        decode()


# -- strategies ------------------------------------------------------------------------------

ANY_NUMBER = st.integers() | st.floats()  # NaN and ±Infinity included: Python's json reads them
# Out-of-range times and durations have examples of their own below; the random runs keep
# numbers where times and durations fit, so they explore the rest of the answer.
BOUNDED_NUMBER = st.integers(-(10**12), 10**12) | st.floats(-1e12, 1e12, allow_nan=False)

# Mostly 200, so well-shaped answers get past the envelope, then anything.
STATUSES = st.one_of(
    st.just(200),
    st.just(200),
    st.sampled_from([201, 400, 401, 403, 404, 429, 500, 502, 503]),
    st.integers(100, 599),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/html", "text/plain", ""]
)


def json_values(numbers: st.SearchStrategy[Any], keys: Sequence[str]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON whose objects use both random keys and the wire's real field names."""
    scalars = st.none() | st.booleans() | numbers | st.text(max_size=12)
    key = st.sampled_from(keys) | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(key, children, max_size=6)
        ),
        max_leaves=25,
    )


def field(right: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly the right type, sometimes anything."""
    return st.one_of(right, right, wrong)


def shaped(
    fields: dict[str, st.SearchStrategy[Any]], wrong: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """An object with the documented fields, mostly all there and right (so decoding goes
    deep), else each maybe missing or of a wrong type, with or without extra keys."""
    valid = st.fixed_dictionaries(fields)
    broken = st.fixed_dictionaries(
        {}, optional={name: field(right, wrong) for name, right in fields.items()}
    ).flatmap(
        lambda doc: st.just(doc) | st.builds(lambda extra: {**extra, **doc}, wrong_dict(wrong))
    )
    return st.one_of(valid, valid, valid, broken)


def wrong_dict(wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=8), wrong, max_size=3)


def mostly(success: Any, *others: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A code: the success value half the time, else a known error or any integer."""
    return st.one_of(st.just(success), st.one_of(*others, st.integers()))


def int_or_quoted(numbers: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return numbers | numbers.map(str)


TENCENT_KEYS = (
    "ActionStatus",
    "ErrorCode",
    "ErrorInfo",
    "RequestId",
    "Response",
    "RoomId",
    "TotalViewers",
    "TotalGiftsSent",
    "TotalGiftCoins",
    "TotalUniqueGiftSenders",
    "TotalLikesReceived",
    "TotalMsgCount",
    "From_Account",
    "Sequence",
    "TotalCount",
    "TotalCoins",
    "GiftSenderCount",
    "Next",
    "RoomList",
    "RoomName",
    "Owner_Account",
    "CreateTime",
    "ActivityStatus",
    "ViewCount",
    "CoverURL",
    "Category",
)


def tencent_docs(wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    count = st.integers(min_value=0, max_value=2**40)
    summary = shaped(
        {
            "RoomId": st.text(max_size=10),
            "RoomName": st.text(max_size=10),
            "Owner_Account": st.text(max_size=10),
            "CreateTime": st.integers(),
            "ActivityStatus": st.integers(0, 3),
            "ViewCount": count,
            "CoverURL": st.text(max_size=10),
            "Category": st.lists(st.integers(0, 99), max_size=3),
        },
        wrong,
    )
    payload = shaped(
        {
            "TotalViewers": count,
            "TotalGiftsSent": count,
            "TotalGiftCoins": count,
            "TotalUniqueGiftSenders": count,
            "TotalLikesReceived": count,
            "TotalMsgCount": count,
            "Sequence": count,
            "TotalCount": count,
            "TotalCoins": count,
            "GiftSenderCount": count,
            "Next": st.text(max_size=10),
            "RoomList": st.lists(summary, max_size=4),
        },
        wrong,
    )
    return shaped(
        {
            "ActionStatus": st.sampled_from(["OK", "FAIL"]),
            "ErrorCode": mostly(0, st.sampled_from([70001, 70050, 60007, 100001, 100004])),
            "ErrorInfo": st.text(max_size=10),
            "RequestId": st.text(max_size=10),
            "Response": payload,
        },
        wrong,
    )


CNC_KEYS = (
    "code",
    "message",
    "data",
    "domain",
    "streamList",
    "stream",
    "sumTime",
    "durationDetailList",
    "startTime",
    "endTime",
    "duration",
)


def cnc_times() -> st.SearchStrategy[Any]:
    """Epoch seconds or ms (numbers or strings) and date-time text, all in range."""
    moments = st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.none()
    )
    epochs = st.integers(-(10**12), 10**12)
    return st.one_of(
        epochs,
        epochs.map(str),
        moments.map(lambda m: m.isoformat(sep=" ")),
        moments.map(lambda m: m.strftime("%Y/%m/%d %H:%M:%S")),
    )


def cnc_docs(wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    millis = st.integers(0, 10**11)
    session = shaped(
        {
            "startTime": cnc_times(),
            "endTime": cnc_times(),
            "duration": int_or_quoted(millis),
        },
        wrong,
    )
    names = [f"{domain}/{name}" for domain in DOMAINS for name in WANTED[domain]]
    stream = shaped(
        {
            "stream": st.sampled_from([*names, "live/s1", "live/s2", "other/x"])
            | st.text(max_size=8),
            "sumTime": int_or_quoted(millis),
            "durationDetailList": st.lists(session, max_size=3),
        },
        wrong,
    )
    domain = shaped(
        {
            "domain": st.sampled_from(DOMAINS) | st.text(max_size=8),
            "streamList": st.lists(stream, max_size=3),
        },
        wrong,
    )
    return shaped(
        {
            "code": mostly(
                "0", st.sampled_from([0, "24102500", "24102019", "401"]), st.text(max_size=5)
            ),
            "message": st.text(max_size=10) | st.sampled_from(["too many requests", "ok"]),
            "data": st.lists(domain, max_size=3),
        },
        wrong,
    )


POLYV_KEYS = (
    "code",
    "status",
    "message",
    "error",
    "desc",
    "data",
    "streamUrl",
    "bitRate",
    "audioFrameRate",
    "videoFrameRate",
    "time",
    "timestamp",
)


def polyv_docs(wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    rate = int_or_quoted(st.integers(0, 10**9))
    moments = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(
        lambda m: m.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    )
    sample = shaped(
        {
            "streamUrl": st.text(max_size=10),
            "bitRate": rate,
            "audioFrameRate": rate,
            "videoFrameRate": rate,
            "time": moments | moments.map(lambda m: m[:-4]),
            "timestamp": st.none() | st.integers(),
        },
        wrong,
    )
    return shaped(
        {
            "code": mostly(200, st.sampled_from(["200", 400, 403, 500])),
            "status": st.sampled_from(["success", "error", "fail"]),
            "message": st.sampled_from(
                [
                    "",
                    "invalid signature.",
                    "invalid timestamp.",
                    "channel status not live",
                    "qps exceeds the limit",
                ]
            )
            | st.text(max_size=10),
            "error": st.fixed_dictionaries({"desc": st.text(max_size=10)}),
            "data": st.lists(sample, max_size=4),
        },
        wrong,
    )


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


HTML = st.builds(
    lambda status, title, body: (
        f"<html><head><title>{status} {title}</title></head><body>{body}</body></html>"
    ).encode(),
    st.integers(100, 599),
    st.text(max_size=20),
    st.text(max_size=40),
)


def bodies(
    kind: str, valid: st.SearchStrategy[dict[str, Any]], keys: Sequence[str], numbers: Any
) -> st.SearchStrategy[bytes]:
    """Bodies of one kind: arbitrary JSON, shaped answers, truncated ones, bytes or HTML."""
    if kind == "arbitrary_json":
        return json_values(numbers, keys).map(encode)
    if kind == "shaped":
        return valid.map(encode)
    if kind == "truncated":
        return valid.map(encode).flatmap(
            lambda raw: st.integers(0, max(len(raw) - 1, 0)).map(lambda cut: raw[:cut])
        )
    if kind == "random_bytes":
        return st.binary(max_size=200)
    assert kind == "html"
    return HTML


KINDS = ("arbitrary_json", "shaped", "truncated", "random_bytes", "html")


def responses(body: st.SearchStrategy[bytes]) -> st.SearchStrategy[HttpResponse]:
    date = st.sampled_from(
        ["Mon, 01 Jan 0001 00:00:00 +0100", "Fri, 31 Dec 9999 23:59:59 -2359", "yesterday", ""]
    ) | st.text(max_size=30)
    return st.builds(
        lambda status, content_type, raw, date_header: HttpResponse(
            status=status,
            headers={"Content-Type": content_type, "Date": date_header},
            body=raw,
            elapsed=0.01,
        ),
        STATUSES,
        CONTENT_TYPES,
        body,
        date,
    )


# -- the properties ------------------------------------------------------------------------


TENCENT_WRONG = json_values(ANY_NUMBER, TENCENT_KEYS)
CNC_WRONG = json_values(BOUNDED_NUMBER, CNC_KEYS)
POLYV_WRONG = json_values(ANY_NUMBER, POLYV_KEYS)

TENCENT_ANSWERS = {
    kind: responses(bodies(kind, tencent_docs(TENCENT_WRONG), TENCENT_KEYS, ANY_NUMBER))
    for kind in KINDS
}
CNC_ANSWERS = {
    kind: st.lists(
        responses(bodies(kind, cnc_docs(CNC_WRONG), CNC_KEYS, BOUNDED_NUMBER)),
        min_size=1,
        max_size=3,
    )
    for kind in KINDS
}
POLYV_ANSWERS = {
    kind: responses(bodies(kind, polyv_docs(POLYV_WRONG), POLYV_KEYS, ANY_NUMBER)) for kind in KINDS
}


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_tencent_answers_raise_only_livestats_errors(kind: str, data: st.DataObject) -> None:
    response = data.draw(TENCENT_ANSWERS[kind])
    operation = data.draw(st.sampled_from(TENCENT_OPERATIONS))
    only_livestats_errors(lambda: decode_tencent(response, operation))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_chinanetcenter_answers_raise_only_livestats_errors(kind: str, data: st.DataObject) -> None:
    answers = data.draw(CNC_ANSWERS[kind])
    zone = data.draw(st.sampled_from(ZONES))
    only_livestats_errors(lambda: decode_chinanetcenter(answers, zone))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_polyv_answers_raise_only_livestats_errors(kind: str, data: st.DataObject) -> None:
    response = data.draw(POLYV_ANSWERS[kind])
    only_livestats_errors(lambda: decode_polyv(response))


def test_the_decoders_do_succeed_on_good_answers() -> None:
    """The properties are not vacuous: a well-formed answer decodes on every path."""
    ok = {"Content-Type": "application/json"}
    stats = {k: 1 for k in TENCENT_KEYS[6:12]}
    tencent = HttpResponse(
        status=200,
        headers=ok,
        body=encode({"ActionStatus": "OK", "ErrorCode": 0, "Response": stats}),
        elapsed=0.01,
    )
    assert isinstance(decode_tencent(tencent, "get_room_stats"), RoomStats)
    session = {"startTime": "1718409600", "endTime": 1718413200, "duration": 3_600_000}
    cnc_doc = {
        "code": "0",
        "data": [
            {
                "domain": DOMAINS[0],
                "streamList": [
                    {
                        "stream": f"{DOMAINS[0]}/live/s1",
                        "sumTime": "3600000",
                        "durationDetailList": [session],
                    }
                ],
            }
        ],
    }
    cnc = HttpResponse(status=200, headers=ok, body=encode(cnc_doc), elapsed=0.01)
    merged = decode_chinanetcenter([cnc], "GMT+08:00")
    assert isinstance(merged, list)
    assert merged[0].total == timedelta(hours=1)
    sample = {
        "streamUrl": "recordf",
        "bitRate": "1",
        "audioFrameRate": "2",
        "videoFrameRate": "3",
        "time": "2023-04-07 09:45:24.443",
    }
    polyv = HttpResponse(
        status=200,
        headers=ok,
        body=encode({"code": 200, "status": "success", "data": [sample]}),
        elapsed=0.01,
    )
    assert decode_polyv(polyv) == [
        StreamInfoSample(
            channel_id=CHANNEL,
            stream_url="recordf",
            bit_rate=1,
            audio_frame_rate=2,
            video_frame_rate=3,
            time=datetime(2023, 4, 7, 9, 45, 24, 443000, tzinfo=timezone(timedelta(hours=8))),
        )
    ]


# -- known bugs ------------------------------------------------------------------------------

DEEP = b"[" * 100_000


@pytest.mark.parametrize(
    "provider",
    [
        "tencent",
        "chinanetcenter",
        "polyv",
    ],
)
def test_deeply_nested_json_is_a_livestats_error(provider: str) -> None:
    response = HttpResponse(
        status=200, headers={"Content-Type": "application/json"}, body=DEEP, elapsed=0.01
    )
    decoders: dict[str, Callable[[], object]] = {
        "tencent": lambda: decode_tencent(response, "get_room_stats"),
        "chinanetcenter": lambda: decode_chinanetcenter([response], "GMT+08:00"),
        "polyv": lambda: decode_polyv(response),
    }
    with pytest.raises(LiveStatsError):
        decoders[provider]()


def _cnc_answer(session: dict[str, Any], sum_time: Any = 1000) -> HttpResponse:
    doc = {
        "code": "0",
        "data": [
            {
                "domain": DOMAINS[0],
                "streamList": [
                    {
                        "stream": f"{DOMAINS[0]}/live/s1",
                        "sumTime": sum_time,
                        "durationDetailList": [session],
                    }
                ],
            }
        ],
    }
    return HttpResponse(
        status=200, headers={"Content-Type": "application/json"}, body=encode(doc), elapsed=0.01
    )


GOOD_SESSION = {"startTime": 1718409600, "endTime": 1718413200, "duration": 1000}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(_cnc_answer(GOOD_SESSION, sum_time=10**17), id="huge-sumTime"),
        pytest.param(
            _cnc_answer({**GOOD_SESSION, "duration": "100000000000000000"}), id="huge-duration"
        ),
        pytest.param(
            _cnc_answer({**GOOD_SESSION, "startTime": float("inf")}), id="infinite-startTime"
        ),
        pytest.param(_cnc_answer({**GOOD_SESSION, "endTime": 10**30}), id="huge-endTime"),
        pytest.param(
            _cnc_answer({**GOOD_SESSION, "startTime": "0001-01-01 00:00:00+09:00"}),
            id="year-1-text",
        ),
    ],
)
def test_out_of_range_push_sessions_are_livestats_errors(answer: HttpResponse) -> None:
    with pytest.raises(LiveStatsError):
        decode_chinanetcenter([answer], "GMT+08:00")
