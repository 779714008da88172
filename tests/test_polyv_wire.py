"""The Polyv wire format without a server: signing, decoding, and every error mapping."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from livestats import (
    AuthenticationError,
    CredentialsExpiredError,
    LiveStatsError,
    ProviderError,
    RateLimitedError,
    ResponseDecodingError,
)
from livestats._core.convert import structure
from livestats._core.http import HttpResponse
from livestats.errors import ChannelNotLiveError
from livestats.providers.polyv import wire
from livestats.providers.polyv.models import StreamInfoSample

OPERATION = "get_stream_info"
BEIJING = timezone(timedelta(hours=8))


def response(
    body: bytes | dict[str, Any] | list[Any],
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(
        status=status,
        headers={"Content-Type": content_type, **(headers or {})},
        body=raw,
        elapsed=0.01,
    )


def error_body(code: int | str, message: str, status: str = "error") -> dict[str, Any]:
    return {"code": code, "status": status, "message": message, "data": ""}


def open_error(resp: HttpResponse) -> LiveStatsError:
    """The error ``resp`` decodes to (every failure is a LiveStatsError, never a KeyError)."""
    with pytest.raises(LiveStatsError) as info:
        wire.open_envelope(resp, OPERATION)
    return info.value


# -- signing -------------------------------------------------------------------------------


def test_sign_matches_the_vendors_known_answer() -> None:
    params = {
        "appId": "g4rqgmmjuo",
        "channelIds": "2477096,2272655",
        "endDay": "2022-06-18",
        "startDay": "2022-05-20",
        "timestamp": "1660270926732",
    }
    secret = "fsq2k5weced1h8vui657xtdva66whf0g"
    assert wire.sign(params, secret) == "0D2BDA2FD04D93A2B8832B91FD973C4D"


def test_null_and_blank_params_and_sign_itself_are_left_out() -> None:
    base = {"appId": "app", "timestamp": "1660270926732"}
    noisy = {**base, "startTime": None, "endTime": "", "note": "   ", "sign": "OLD"}
    assert wire.sign(noisy, "s") == wire.sign(base, "s")


def test_keys_are_sorted_in_ascii_order_not_case_folded() -> None:
    # ASCII puts every upper-case letter before any lower-case one: "Z" < "a".
    params = {"a": "1", "Z": "2", "b": "3"}
    expected = wire.sign({"Z": "2", "a": "1", "b": "3"}, "s")
    assert wire.sign(params, "s") == expected
    assert wire.sign(params, "s") != wire.sign({"x": "Z2a1b3"}, "s")  # the secret wraps it


def test_values_are_signed_raw_and_the_digest_is_upper_case_hex() -> None:
    digest = wire.sign({"channelIds": "1,2 3&4"}, "s")
    assert len(digest) == 32
    assert digest == digest.upper()
    assert digest != wire.sign({"channelIds": "1%2C2+3%264"}, "s")


def test_signed_request_sends_what_it_signs_and_hides_the_sign() -> None:
    request = wire.signed_request(
        "https://api.polyv.net",
        wire.STREAM_INFO_PATH,
        {"channelId": "3880533", "startTime": None},
        app_id="app",
        app_secret="s3cr3t-value",
        timestamp_ms=1680831521000,
    )
    assert request.method == "GET"
    assert request.url == "https://api.polyv.net/live/v3/channel/monitor/list-tencent-stream-info"
    params = dict(request.params)
    sign = params.pop("sign")
    assert params == {"appId": "app", "timestamp": "1680831521000", "channelId": "3880533"}
    assert sign == wire.sign(params, "s3cr3t-value")
    assert sign not in request.safe_url
    assert "s3cr3t-value" not in repr(request)
    assert sign not in repr(request)


def test_epoch_ms_is_exact_for_any_zone() -> None:
    moment = datetime(2023, 4, 7, 9, 45, 24, 443_999, tzinfo=BEIJING)
    assert wire.epoch_ms(moment) == 1680831924443
    assert len(str(wire.epoch_ms(moment))) == 13


# -- successful answers ----------------------------------------------------------------------

VENDOR_ITEM: dict[str, Any] = {
    "streamUrl": "recordf",
    "bitRate": "1157120",
    "audioFrameRate": "46",
    "videoFrameRate": "13",
    "time": "2023-04-07 09:45:24.443",
    "timestamp": None,
}
VENDOR_SAMPLE: dict[str, Any] = {
    "code": 200,
    "status": "success",
    "message": "",
    "data": [VENDOR_ITEM],
}


def decode_sample(item: dict[str, Any]) -> StreamInfoSample:
    return structure(
        wire.CONVERTER,
        {**item, "channelId": "3880533"},
        StreamInfoSample,
        provider="polyv",
        operation=OPERATION,
        request_id=None,
    )


def test_the_vendors_sample_decodes_with_ints_and_beijing_time() -> None:
    (item,) = wire.open_envelope(response(VENDOR_SAMPLE), OPERATION)
    sample = decode_sample(item)
    assert sample == StreamInfoSample(
        channel_id="3880533",
        stream_url="recordf",
        bit_rate=1157120,
        audio_frame_rate=46,
        video_frame_rate=13,
        time=datetime(2023, 4, 7, 9, 45, 24, 443_000, tzinfo=BEIJING),
    )
    assert sample.time.utcoffset() == timedelta(hours=8)
    assert sample.time == datetime(2023, 4, 7, 1, 45, 24, 443_000, tzinfo=timezone.utc)


def test_times_without_milliseconds_and_real_ints_are_accepted() -> None:
    item = {**VENDOR_ITEM, "time": "2023-04-07 09:45:24", "bitRate": 1157120}
    sample = decode_sample(item)
    assert sample.time == datetime(2023, 4, 7, 9, 45, 24, tzinfo=BEIJING)
    assert sample.bit_rate == 1157120


def test_an_empty_data_list_is_an_empty_answer() -> None:
    assert wire.open_envelope(response({**VENDOR_SAMPLE, "data": []}), OPERATION) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"bitRate": "fast"}, "bitRate"),
        ({"bitRate": None}, "bitRate"),
        ({"videoFrameRate": True}, "videoFrameRate"),
        ({"time": "07/04/2023 09:45"}, "time"),
        ({"time": 1680831924443}, "time"),
        ({"streamUrl": 5}, "streamUrl"),
    ],
)
def test_samples_that_do_not_fit_are_decoding_errors(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ResponseDecodingError, match=fragment) as info:
        decode_sample({**VENDOR_ITEM, **change})
    assert info.value.operation == OPERATION


def test_a_missing_field_is_a_decoding_error() -> None:
    item = dict(VENDOR_ITEM)
    del item["audioFrameRate"]
    with pytest.raises(ResponseDecodingError, match="audioFrameRate"):
        decode_sample(item)


# -- error answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("http_status", [200, 400])
def test_invalid_signature_is_an_authentication_error(http_status: int) -> None:
    err = open_error(response(error_body(400, "invalid signature."), status=http_status))
    assert type(err) is AuthenticationError
    assert (err.provider, err.operation) == ("polyv", OPERATION)
    assert (err.vendor_code, err.vendor_message) == (400, "invalid signature.")
    assert err.http_status == http_status
    assert err.request_id is None
    assert not err.retryable


def test_invalid_timestamp_is_a_renewable_credentials_error() -> None:
    err = open_error(response(error_body(400, "invalid timestamp."), status=400))
    assert isinstance(err, CredentialsExpiredError)
    assert err.vendor_code == 400
    assert "clock" in str(err)


@pytest.mark.parametrize("message", ["channel status not live", "Channel Not Live"])
def test_not_live_is_its_own_error_and_not_retried(message: str) -> None:
    err = open_error(response(error_body(400, message), status=400))
    assert isinstance(err, ChannelNotLiveError)
    assert isinstance(err, ProviderError)
    assert not err.retryable
    assert err.vendor_message == message


@pytest.mark.parametrize(
    ("code", "http_status"), [(403, 403), (400, 200), ("429", 429), (None, 403)]
)
def test_qps_exceeded_is_rate_limited_whatever_its_code(
    code: int | str | None, http_status: int
) -> None:
    body = {"code": code, "status": "error", "message": "QPS exceeds number of calls"}
    err = open_error(response(body, status=http_status))
    assert isinstance(err, RateLimitedError)
    assert err.retry_after == wire.BLOCK_SECONDS == 300.0
    assert err.vendor_code == (int(code) if code is not None else None)
    assert err.http_status == http_status


def test_a_plain_text_qps_answer_is_rate_limited_too() -> None:
    resp = response(b"qps exceeds number of calls", status=403, content_type="text/plain")
    assert isinstance(open_error(resp), RateLimitedError)


@pytest.mark.parametrize(
    ("body", "http_status"),
    [
        (error_body(500, "internal error", "fail"), 500),
        (error_body(500, "internal error", "fail"), 200),
        (error_body(501, "", "fail"), 200),
        (error_body(1001, "odd", "fail"), 200),  # an undocumented code, but "fail"
        (error_body(1001, "odd"), 502),  # an undocumented code: the HTTP status decides
    ],
)
def test_server_failures_are_retryable(body: dict[str, Any], http_status: int) -> None:
    err = open_error(response(body, status=http_status))
    assert type(err) is ProviderError
    assert err.retryable
    assert err.vendor_code == body["code"]


@pytest.mark.parametrize(
    ("body", "http_status"),
    [
        (error_body(400, "channelId is required"), 400),
        (error_body(403, "forbidden"), 200),
        (error_body(400, "bad window"), 502),  # the body's 400 wins over the gateway's 502
        (error_body(1001, "odd"), 200),
    ],
)
def test_other_client_errors_are_not_retried(body: dict[str, Any], http_status: int) -> None:
    err = open_error(response(body, status=http_status))
    assert type(err) is ProviderError
    assert not err.retryable
    assert (err.vendor_code, err.vendor_message) == (body["code"], body["message"])


def test_the_error_object_stands_in_for_an_empty_message() -> None:
    body = {"code": 400, "status": "error", "message": "", "error": {"code": 1, "desc": "bad"}}
    err = open_error(response(body, status=400))
    assert err.vendor_message == "bad"


def test_a_string_code_is_tolerated() -> None:
    body = {**VENDOR_SAMPLE, "code": "200"}
    assert len(wire.open_envelope(response(body), OPERATION)) == 1


@pytest.mark.parametrize("status", [502, 503, 200, 404])
def test_html_pages_are_retryable_with_their_title(status: int) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    err = open_error(response(page, status=status, content_type="text/html"))
    assert type(err) is ProviderError
    assert err.retryable
    assert err.vendor_message == "502 Bad Gateway"


def test_non_json_from_a_failing_server_is_retryable() -> None:
    err = open_error(response(b"upstream timed out", status=504, content_type="text/plain"))
    assert type(err) is ProviderError
    assert err.retryable


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json at all", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b'{"code": 200', "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'{"status": "success", "data": []}', "no integer code"),
        (b'{"code": true, "data": []}', "no integer code"),
        (b'{"code": 2.5, "data": []}', "no integer code"),
        ('{"code": "\u00b2", "data": []}'.encode(), "no integer code"),
        (b'{"code": {"x": 1}, "message": ["qps"]}', "no integer code"),
        (b'{"code": 200, "status": "success"}', "NoneType, not a list"),
        (b'{"code": 200, "status": "success", "data": ""}', "str, not a list"),
        (b'{"code": 200, "status": "success", "data": {"streamUrl": "x"}}', "not a list"),
    ],
)
def test_malformed_answers_are_decoding_errors(body: bytes, fragment: str) -> None:
    err = open_error(response(body, status=200))
    assert isinstance(err, ResponseDecodingError)
    assert err.operation == OPERATION
    assert fragment in str(err)


def test_json_without_the_envelope_from_a_failing_server_is_retryable() -> None:
    err = open_error(response({"error": "gateway"}, status=503))
    assert type(err) is ProviderError
    assert err.retryable


def test_a_data_item_that_is_not_an_object_is_a_decoding_error() -> None:
    with pytest.raises(ResponseDecodingError, match="JSON object"):
        structure(
            wire.CONVERTER,
            "recordf",
            StreamInfoSample,
            provider="polyv",
            operation=OPERATION,
            request_id=None,
        )


# -- the server's clock ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Date": "Fri, 07 Apr 2023 01:45:24 GMT"}, 1680831924.0),
        ({"date": "Fri, 07 Apr 2023 01:45:24 GMT"}, 1680831924.0),
        ({"Date": "Fri, 07 Apr 2023 09:45:24 +0800"}, 1680831924.0),
        ({"Date": "Fri, 07 Apr 2023 01:45:24 -0000"}, 1680831924.0),
        ({}, None),
        ({"Date": ""}, None),
        ({"Date": "yesterday"}, None),
        ({"Date": "Fri, 99 Apr 2023 01:45:24 GMT"}, None),
    ],
)
def test_server_time_reads_the_date_header(headers: dict[str, str], expected: float | None) -> None:
    assert wire.server_time(response(VENDOR_SAMPLE, headers=headers)) == expected
