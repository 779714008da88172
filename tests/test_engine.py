"""The engine, over MockTransport and on virtual time: what it does with each kind of answer.

Every test runs on a loop whose clock jumps to the next timer (``virtual_time``):
the limiter, the retries and the pauses all read and sleep on that one clock, so a
60 s pause takes no real time and "how long did the call wait" is exact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest

from livestats import (
    AuthenticationError,
    ClientClosedError,
    Clock,
    HttpRequest,
    HttpResponse,
    LocalLimiter,
    ProviderError,
    Quota,
    RateLimitedError,
    RedirectError,
    ResponseDecodingError,
    ResponseTooLargeError,
    RetryPolicy,
    TransportError,
)
from livestats._core.engine import Call, Engine, Signing
from livestats._core.outcome import Outcome, Refusal, Value
from livestats.errors import CredentialsExpiredError
from livestats.testing import MockTransport
from tests.virtual_time import virtual_time

SECRET = "engine-test-secret-key"
QUOTA = Quota(2, 1.0)


def now() -> float:
    return asyncio.get_running_loop().time()


def sign(signing: Signing) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url="http://vendor.test/op",
        params={"sig": f"sig-{SECRET}-{signing.now:.3f}", "t": f"{signing.now:.3f}"},
        secret_names=frozenset({"sig"}),
    )


def classify(response: HttpResponse) -> Outcome[Any]:
    """A toy vendor: the body says what happened."""
    doc = json.loads(response.body or b"{}")
    kind = doc.get("kind", "ok")
    message = doc.get("message")
    context: dict[str, Any] = {"http_status": response.status, "vendor_message": message}
    if kind == "ok":
        return Value(value=doc.get("value"))
    if kind == "transient":
        return Refusal.of(ProviderError("busy", retryable=True, **context))
    if kind == "final":
        return Refusal.of(ProviderError("no such thing", **context))
    if kind == "rate":
        return Refusal.of(RateLimitedError("slow down", **context))
    if kind == "pause":
        return Refusal.of(ProviderError("wait", retryable=True, **context), pause_operation=7.0)
    if kind == "lockout":
        return Refusal.of(AuthenticationError("locked", **context), pause_client=60.0)
    if kind == "expired":
        return Refusal.of(CredentialsExpiredError("expired", **context), renew_credentials=True)
    if kind == "skew":
        return Refusal(error=CredentialsExpiredError("skew", **context), clock_offset=120.0)
    if kind == "refused":
        return Refusal.of(AuthenticationError("bad key", **context), credentials_refused=True)
    raise KeyError(kind)  # a decoder bug


def answer(kind: str = "ok", *, status: int = 200, **fields: Any) -> HttpResponse:
    return HttpResponse(status=status, body=json.dumps({"kind": kind, **fields}).encode())


def make_engine(
    handler: Callable[[HttpRequest], Any] | MockTransport,
    *,
    retry: RetryPolicy | None = None,
    renew: Callable[[], bool] | None = None,
    limiter: LocalLimiter | None = None,
    clock: Clock | None = None,
    secrets: tuple[str, ...] = (SECRET,),
) -> tuple[Engine, MockTransport]:
    """An engine over a mock vendor (a handler, or a MockTransport already made)."""
    transport = handler if isinstance(handler, MockTransport) else MockTransport(handler)
    engine = Engine(
        provider="toy",
        transport=transport,
        limiter=limiter or LocalLimiter(),
        retry=retry or RetryPolicy(attempts=4, initial_wait=0.5, max_wait=4.0),
        clock=clock or Clock(),
        max_response_bytes=10_000,
        secrets=secrets,
        renew_credentials=renew,
    )
    return engine, transport


def call(operation: str = "op", quota: Quota | None = QUOTA) -> Call[Any]:
    return Call(
        operation=operation,
        quota_key=f"toy:{operation}",
        quota=quota,
        sign=sign,
        classify=classify,
    )


def script(*answers: HttpResponse) -> Callable[[HttpRequest], HttpResponse]:
    """Answer in order; the last answer repeats."""
    queue = list(answers)

    def handler(request: HttpRequest) -> HttpResponse:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


@virtual_time
async def test_a_value_comes_back_and_each_attempt_is_signed_afresh() -> None:
    """Sign on every attempt: a retry never replays the request before it."""
    signed: list[HttpRequest] = []

    def counting_sign(signing: Signing) -> HttpRequest:
        signed.append(sign(signing))
        return signed[-1]

    engine, transport = make_engine(script(answer("transient"), answer(value=42)))
    job = Call(
        operation="op", quota_key="toy:op", quota=QUOTA, sign=counting_sign, classify=classify
    )
    assert await engine.run(job) == 42
    assert len(signed) == 2
    assert transport.requests == signed  # each attempt sent the request signed for it


@virtual_time
async def test_transient_refusals_back_off_on_the_clock_and_end_after_the_attempts() -> None:
    """Retries are bounded by attempts, and their backoff sleeps on the injected clock."""
    engine, transport = make_engine(script(answer("transient")))
    started = now()
    with pytest.raises(ProviderError, match="busy"):
        await engine.run(call())
    assert len(transport.requests) == 4
    # Equal jitter: retry n waits in [b/2, b] with b = 0.5, 1, 2.
    assert 1.75 <= now() - started <= 3.5


@virtual_time
async def test_retries_stop_at_the_time_budget() -> None:
    """No new attempt starts once the policy's total time is spent."""
    retry = RetryPolicy(attempts=100, timeout=10.0, initial_wait=4.0, max_wait=4.0)
    engine, transport = make_engine(script(answer("transient")), retry=retry)
    with pytest.raises(ProviderError):
        await engine.run(call())
    assert 2 <= len(transport.requests) <= 6


@virtual_time
async def test_a_final_refusal_is_not_retried() -> None:
    engine, transport = make_engine(script(answer("final")))
    with pytest.raises(ProviderError, match="no such thing") as info:
        await engine.run(call())
    assert len(transport.requests) == 1
    assert info.value.provider == "toy"
    assert info.value.operation == "op"


@virtual_time
async def test_pause_operation_holds_every_caller_of_the_key_that_long() -> None:
    """A refusal's pause of the operation is carried out on the limiter: the retry waits 7 s."""
    engine, _ = make_engine(script(answer("pause"), answer(value="after")))
    started = now()
    assert await engine.run(call()) == "after"
    assert 7.0 <= now() - started < 7.5


@pytest.mark.parametrize("header", ["7", "date"])
@virtual_time
async def test_http_429_is_a_rate_limit_and_retry_after_pauses_the_key(header: str) -> None:
    """Any 429, whatever the provider reads in it, is a RateLimitedError; Retry-After (seconds
    or an HTTP date) pauses the quota key for that long rather than a whole quota period."""
    wall = 1_700_000_000.0
    value = "7" if header == "7" else formatdate(wall + 7, usegmt=True)
    limiter = LocalLimiter()

    def handler(request: HttpRequest) -> HttpResponse:
        if len(transport.requests) == 1:
            return HttpResponse(status=429, headers={"Retry-After": value}, body=b"slow down")
        return answer(value="served")

    transport = MockTransport(handler)
    engine, _ = make_engine(
        transport, limiter=limiter, retry=RetryPolicy(), clock=Clock(wall=lambda: wall)
    )
    started = now()
    assert await engine.run(call(quota=Quota(300, 300.0))) == "served"
    assert 7.0 <= now() - started < 8.0


@virtual_time
async def test_retry_after_is_capped_by_the_policy() -> None:
    engine, _transport = make_engine(
        script(HttpResponse(status=429, headers={"Retry-After": "3600"}), answer(value=1)),
        retry=RetryPolicy(max_retry_after=10.0),
    )
    started = now()
    assert await engine.run(call()) == 1
    assert 10.0 <= now() - started < 11.0


@virtual_time
async def test_retry_after_on_a_final_429_is_on_the_error() -> None:
    engine, _ = make_engine(
        script(HttpResponse(status=429, headers={"Retry-After": "7"})),
        retry=RetryPolicy.disabled(),
    )
    with pytest.raises(RateLimitedError) as info:
        await engine.run(call())
    assert info.value.retry_after == 7.0
    assert info.value.until is not None
    assert info.value.http_status == 429


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@virtual_time
async def test_a_redirect_is_a_typed_error_and_is_neither_followed_nor_retried(
    status: int,
) -> None:
    engine, transport = make_engine(
        script(HttpResponse(status=status, headers={"Location": "http://elsewhere.test/"}))
    )
    with pytest.raises(RedirectError) as info:
        await engine.run(call())
    assert info.value.http_status == status
    assert info.value.retryable is False
    assert len(transport.requests) == 1


@virtual_time
async def test_renewal_retries_once_outside_the_attempt_count() -> None:
    renewals: list[float] = []

    def renew() -> bool:
        renewals.append(now())
        return True

    engine, transport = make_engine(
        script(answer("expired"), answer(value="ok")), retry=RetryPolicy(attempts=1), renew=renew
    )
    assert await engine.run(call()) == "ok"
    assert len(renewals) == 1
    assert len(transport.requests) == 2


@virtual_time
async def test_credentials_that_cannot_be_renewed_are_refused_for_good() -> None:
    """A signature that expired and cannot be renewed stops the client like a wrong key."""
    engine, transport = make_engine(script(answer("expired")), renew=lambda: False)
    with pytest.raises(CredentialsExpiredError) as info:
        await engine.run(call())
    assert info.value.dooms_batch
    with pytest.raises(AuthenticationError):
        await engine.run(call())
    assert len(transport.requests) == 1


@virtual_time
async def test_a_clock_offset_dates_later_requests_and_retries_once() -> None:
    """Polyv's clock check: the engine adopts the vendor's offset, signs by it, retries once."""
    engine, transport = make_engine(script(answer("skew"), answer(value="ok")))
    assert await engine.run(call()) == "ok"
    first, second = (float(r.params["t"]) for r in transport.requests)
    assert second - first == pytest.approx(120.0, abs=0.5)
    assert engine.clock_offset == 120.0


@virtual_time
async def test_a_second_skew_refusal_is_final() -> None:
    engine, transport = make_engine(script(answer("skew")))
    with pytest.raises(CredentialsExpiredError):
        await engine.run(call())
    assert len(transport.requests) == 2


@virtual_time
async def test_refused_credentials_stop_the_client() -> None:
    """After credentials refused for good, nothing more is sent; the error dooms a batch."""
    engine, transport = make_engine(script(answer("refused")))
    with pytest.raises(AuthenticationError) as info:
        await engine.run(call())
    assert info.value.dooms_batch
    for operation in ("op", "other"):
        with pytest.raises(AuthenticationError) as later:
            await engine.run(call(operation))
        assert later.value.dooms_batch
    assert len(transport.requests) == 1


@virtual_time
async def test_one_request_tests_untried_credentials_while_the_others_wait() -> None:
    """Fifty calls at once with a wrong key send one request, not fifty."""
    engine, transport = make_engine(script(answer("refused")))
    results = await asyncio.gather(
        *(engine.run(call(quota=None)) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(transport.requests) == 1


@virtual_time
async def test_accepted_credentials_open_the_gate_for_everyone() -> None:
    """Once one answer shows the credentials work, calls run concurrently again."""
    in_flight = peak = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.1)
        in_flight -= 1
        return answer(value=1)

    engine, transport = make_engine(handler)
    await asyncio.gather(*(engine.run(call(quota=None)) for _ in range(20)))
    assert len(transport.requests) == 20
    assert peak == 19  # the first alone, then the other nineteen together


@virtual_time
async def test_a_cancelled_probe_hands_the_test_to_the_next_call() -> None:
    """Cancelling the attempt that tests the credentials never leaves the others waiting."""
    release = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if len(transport.requests) == 1:
            await release.wait()  # the probe hangs until cancelled
        return answer(value="ok")

    engine, transport = make_engine(handler)
    probe = asyncio.create_task(engine.run(call(quota=None)))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(engine.run(call(quota=None)))
    await asyncio.sleep(0.01)
    probe.cancel()
    assert await waiter == "ok"
    assert len(transport.requests) == 2


@virtual_time
async def test_a_transient_answer_does_not_open_the_gate() -> None:
    """A 502 proves nothing about the credentials: the next call tests them again."""
    engine, transport = make_engine(script(answer("transient"), answer("refused")))
    results = await asyncio.gather(
        *(engine.run(call(quota=None)) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(transport.requests) == 2


@virtual_time
async def test_a_request_that_never_left_hands_its_slot_back() -> None:
    """A refused connection spends no quota: thirty of them do not delay the next call."""
    limiter = LocalLimiter()
    failures = 30

    def handler(request: HttpRequest) -> HttpResponse:
        if len(transport.requests) <= failures:
            raise TransportError("cannot connect", request_sent=False)
        return answer(value="ok")

    transport = MockTransport(handler)
    engine, _ = make_engine(transport, limiter=limiter, retry=RetryPolicy.disabled())
    for _ in range(failures):
        with pytest.raises(TransportError):
            await engine.run(call(quota=Quota(10, 1.0)))
    started = now()
    assert await engine.run(call(quota=Quota(10, 1.0))) == "ok"
    assert now() == started


@virtual_time
async def test_a_request_that_may_have_arrived_holds_its_slot_a_timeout_longer() -> None:
    """Sent, then cut off: the request may still reach the vendor, so its slot frees
    one period plus one attempt timeout later."""

    def handler(request: HttpRequest) -> HttpResponse:
        if len(transport.requests) == 1:
            raise TransportError("connection reset", request_sent=True)
        return answer(value="ok")

    transport = MockTransport(handler, timeout=5.0)
    engine, _ = make_engine(transport, retry=RetryPolicy.disabled())
    with pytest.raises(TransportError):
        await engine.run(call(quota=Quota(1, 1.0)))
    started = now()
    assert await engine.run(call(quota=Quota(1, 1.0))) == "ok"
    assert now() - started == pytest.approx(6.0, abs=0.01)


@virtual_time
async def test_echoed_secrets_are_scrubbed_from_every_error_text() -> None:
    """A gateway that echoes the signed request leaks neither the secret nor the signature."""

    def handler(request: HttpRequest) -> HttpResponse:
        echo = f"refused {request.url}?sig={request.params['sig']} key={SECRET}"
        return answer("final", status=400, message=echo)

    engine, _ = make_engine(handler)
    with pytest.raises(ProviderError) as info:
        await engine.run(call())
    texts = [str(info.value), repr(info.value), info.value.vendor_message or ""]
    for text in texts:
        assert SECRET not in text
        assert "sig-" not in text
    assert "[secure]" in (info.value.vendor_message or "")


@virtual_time
async def test_a_cut_off_echo_leaks_no_piece_of_a_secret() -> None:
    """Vendor text is often cut to length; a cut inside a secret still shows none of it."""
    long_secret = SECRET + "-0123456789abcdef" * 4

    def handler(request: HttpRequest) -> HttpResponse:
        return answer("final", status=400, message=f"echo: {long_secret[:40]}")

    engine, _ = make_engine(handler, retry=RetryPolicy.disabled(), secrets=(long_secret,))
    with pytest.raises(ProviderError) as info:
        await engine.run(call())
    assert long_secret[12:24] not in str(info.value)
    assert info.value.vendor_message == "echo: [secure]"


@virtual_time
async def test_a_client_pause_holds_every_operation() -> None:
    """70050-style lockout: the whole client sends nothing for 60 s, other operations too."""
    engine, _transport = make_engine(script(answer("lockout"), answer(value="ok")))
    with pytest.raises(AuthenticationError):
        await engine.run(call("op"))
    started = now()
    assert await engine.run(call("other")) == "ok"
    assert 60.0 <= now() - started < 60.5


@virtual_time
async def test_calls_waiting_at_the_gate_do_not_send_into_a_lockout() -> None:
    """The attempt testing the credentials meets a 60 s lockout: the calls that waited
    for it send nothing until the lockout is over."""
    sent_at: list[float] = []

    def handler(request: HttpRequest) -> HttpResponse:
        sent_at.append(now())
        return answer("lockout") if len(sent_at) == 1 else answer(value="ok")

    engine, _ = make_engine(handler)
    started = now()
    results = await asyncio.gather(
        *(engine.run(call(quota=None)) for _ in range(5)), return_exceptions=True
    )
    assert isinstance(results[0], AuthenticationError)
    assert results[1:] == ["ok"] * 4
    assert all(moment >= started + 60.0 for moment in sent_at[1:])


@virtual_time
async def test_a_decoder_bug_is_a_decoding_error_not_a_stray_exception() -> None:
    engine, _ = make_engine(script(answer("no-such-kind")))
    with pytest.raises(ResponseDecodingError, match="KeyError"):
        await engine.run(call())


@virtual_time
async def test_an_answer_over_the_size_limit_is_refused() -> None:
    engine, _ = make_engine(script(HttpResponse(status=200, body=b" " * 10_001)))
    with pytest.raises(ResponseTooLargeError) as info:
        await engine.run(call())
    assert info.value.retryable is False


@virtual_time
async def test_a_closed_engine_sends_nothing() -> None:
    engine, transport = make_engine(script(answer(value=1)))
    engine.close()
    with pytest.raises(ClientClosedError) as info:
        await engine.run(call())
    assert info.value.dooms_batch
    assert transport.requests == []


def test_every_refusal_action_is_exercised_here() -> None:
    """Guard: a new action on Refusal needs a test in this file."""
    import attrs

    actions = {f.name for f in attrs.fields(Refusal)} - {"error"}
    exercised = {
        "retry",
        "retry_after",
        "pause_operation",
        "pause_client",
        "renew_credentials",
        "clock_offset",
        "credentials_refused",
    }
    assert actions == exercised
