"""What the events cost per call: with no handler, a no-op handler, and each collector.

Every variant makes ``--calls`` ``get_room_stats`` calls one after another through
one ``TencentClient`` over ``MockTransport`` whose handler returns a prebuilt
answer at once, with pacing off (quota ``None``) and retries off. Nothing ever
waits, so a call is CPU time alone: signing, the engine, decoding, and the events.
Variants:

- **before events**: livestats as it was before the events were added (the tree
  of the parent of the commit that added ``livestats/events.py``, taken with
  ``git archive``), with no handler. This is the engine without any event code
  path: the floor the 2 µs target for "no handler" is measured against. The
  comparison means what it says only while the engine has not changed otherwise
  since then; the script prints which files under ``livestats/`` differ.
- **no handler**: today's livestats, ``on_event`` not given;
- **no-op handler**: ``on_event=lambda event: None`` (building the events and
  handing them over; five per call);
- **PrometheusCollector**: its own registry, never scraped;
- **OpenTelemetryCollector**: an SDK ``MeterProvider`` with an
  ``InMemoryMetricReader`` (never read); spans go to the global no-op tracer;
- **... + SDK tracer**: also an SDK ``TracerProvider`` whose
  ``SimpleSpanProcessor`` hands every span to an exporter that drops it.

Each variant runs in a fresh child process per round (same imports, caches and
garbage-collector state), the variants taking turns for ``--rounds`` rounds. A
child warms up, then times ``--repeats`` runs of ``--calls`` calls in CPU time
(``time.process_time``) and reports the best. The table shows the median and
the best of the rounds, the spread (half the range of the rounds), and what each
variant adds over the one it is compared with. Differences within the spread
are noise. Nothing is asserted.

    .venv/bin/python benchmarks/events_cost.py [--calls N] [--repeats R] [--rounds K]
        [--baseline REV|auto|none] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common

ROOT = Path(__file__).resolve().parent.parent
WARMUP_CALLS = 2000
SDKAPPID = 1400000000
SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
STATS = {
    "TotalViewers": 1,
    "TotalGiftsSent": 0,
    "TotalGiftCoins": 0,
    "TotalUniqueGiftSenders": 0,
    "TotalLikesReceived": 0,
    "TotalMsgCount": 0,
}
BASELINE = "before events"
#: Variant, what its added cost is compared with, and the target for that difference.
VARIANTS: dict[str, tuple[str | None, float | None]] = {
    BASELINE: (None, None),
    "no handler": (BASELINE, 2.0),
    "no-op handler": ("no handler", None),
    "PrometheusCollector": ("no handler", 10.0),
    "OpenTelemetryCollector": ("no handler", None),
    "OpenTelemetryCollector + SDK tracer": ("no handler", None),
}


# -- the child: one variant, timed ----------------------------------------------------------


def _handler(variant: str) -> Callable[[Any], None] | None:
    """The ``on_event`` of ``variant`` (imports only what it needs)."""
    if variant in (BASELINE, "no handler"):
        return None
    if variant == "no-op handler":
        return lambda event: None
    if variant == "PrometheusCollector":
        from livestats.metrics.prometheus import PrometheusCollector

        return PrometheusCollector()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from livestats.metrics.otel import OpenTelemetryCollector

    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    if variant == "OpenTelemetryCollector":
        return OpenTelemetryCollector(meters)

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(Drop()))
    return OpenTelemetryCollector(meters, tracers)


async def _time(variant: str, calls: int, repeats: int) -> float:
    """Best CPU microseconds per call over ``repeats`` runs of ``calls`` calls."""
    from livestats import HttpResponse, RetryPolicy, TencentClient
    from livestats.testing import MockTransport

    doc = {"ActionStatus": "OK", "ErrorCode": 0, "RequestId": "r", "Response": STATS}
    answer = HttpResponse(status=200, body=json.dumps(doc).encode())
    transport = MockTransport(lambda request: answer)
    handler = _handler(variant)
    options: dict[str, Any] = {} if handler is None else {"on_event": handler}
    client = TencentClient(
        SDKAPPID,
        "administrator",
        secret_key=SECRET,
        transport=transport,
        retry=RetryPolicy.disabled(),
        quotas={"get_room_stats": None},
        **options,
    )
    for _ in range(WARMUP_CALLS):
        await client.get_room_stats("room-1")
    best = float("inf")
    for _ in range(repeats):
        transport.requests.clear()  # the mock keeps every request: keep the heap level
        started = time.process_time()
        for _ in range(calls):
            await client.get_room_stats("room-1")
        best = min(best, time.process_time() - started)
    if getattr(client, "event_failures", 0):  # none before events
        raise RuntimeError(f"{variant}: the handler raised {client.event_failures} times")
    await client.close()
    return best / calls * 1e6


def _child(variant: str, calls: int, repeats: int) -> None:
    import livestats

    us = asyncio.run(_time(variant, calls, repeats))
    print(json.dumps({"us_per_call": us, "livestats": livestats.__file__}))


# -- the parent: the baseline tree, the rounds, the table -----------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _baseline_rev(asked: str) -> str | None:
    """The commit to take "before events" from: ``asked``, or the parent of the one adding them."""
    if asked == "none":
        return None
    if asked != "auto":
        return _git("rev-parse", "--verify", f"{asked}^{{commit}}")
    added = _git("log", "--diff-filter=A", "--format=%H", "--", "livestats/events.py")
    if not added:
        raise SystemExit("no commit adds livestats/events.py: give --baseline REV or none")
    return _git("rev-parse", f"{added.splitlines()[-1]}^")


def _extract(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "livestats"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.10.12+: refuse odd members outright
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - our own repository's archive
            tar.extractall(into)


def _run_child(variant: str, args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT / "benchmarks")])}
    command = [
        sys.executable,
        __file__,
        "--child",
        variant,
        f"--calls={args.calls}",
        f"--repeats={args.repeats}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant}: the child failed\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    where = Path(result["livestats"]).resolve()
    if not where.is_relative_to(tree.resolve()):
        raise SystemExit(f"{variant}: livestats came from {where}, not {tree}")
    return result


def _summary(samples: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for variant, figures in samples.items():
        out[variant] = {
            "median_us_per_call": statistics.median(figures),
            "best_us_per_call": min(figures),
            "spread_us": (max(figures) - min(figures)) / 2,
        }
    for variant, fig in out.items():
        reference, target = VARIANTS[variant]
        if reference is None or reference not in out:
            continue
        added = fig["median_us_per_call"] - out[reference]["median_us_per_call"]
        fig.update(compared_with=reference, added_us=added, target_us=target)
        if target is not None:
            fig["target_met"] = added < target
    return out


def _print(args: argparse.Namespace, rev: str | None, summary: dict[str, dict[str, Any]]) -> None:
    rows = []
    for variant, fig in summary.items():
        target = fig.get("target_us")
        added = fig.get("added_us")
        rows.append(
            [
                variant,
                f"{fig['median_us_per_call']:.2f}",
                f"{fig['best_us_per_call']:.2f}",
                f"{fig['spread_us']:.2f}",
                "" if added is None else f"{added:+.2f}",
                fig.get("compared_with", ""),
                ""
                if target is None
                else f"< {target:g} us: {'met' if fig['target_met'] else 'NOT met'}",
            ]
        )
    _common.print_table(
        f"events_cost: {args.calls} get_room_stats calls a run, one at a time, over "
        f"MockTransport (instant answer), pacing and retries off; best of {args.repeats} "
        f"runs per child process, {args.rounds} rounds",
        [
            "variant",
            "median us/call",
            "best us/call",
            "spread",
            "added us",
            "compared with",
            "target",
        ],
        rows,
    )
    if rev is not None:
        changed = _git("diff", "--stat", rev, "--", "livestats/").splitlines()[:-1]
        files = sorted(line.split("|")[0].strip() for line in changed)
        print(f"\n{BASELINE}: livestats at {rev[:12]}; files changed since (working tree):")
        print("  " + ", ".join(files))
    prom, noop, none = (
        summary.get(v, {}).get("median_us_per_call")
        for v in ("PrometheusCollector", "no-op handler", "no handler")
    )
    if prom is not None and noop is not None and none is not None:
        print(
            f"\nPrometheusCollector over no handler, split: {noop - none:.2f} us building and "
            f"handing over the events (no-op handler - no handler), {prom - noop:.2f} us in "
            "the collector (PrometheusCollector - no-op handler)."
        )
    print(
        "\n'added us' is the difference of the medians; differences within the spread "
        "are noise.\nThe 2 us target for 'no handler' compares it with the engine before "
        "events existed\n(their cost when nobody listens); the 10 us target for "
        "PrometheusCollector compares it with 'no handler'."
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="What the events cost per call, with no handler and with each collector."
    )
    parser.add_argument("--calls", type=int, default=20000, help="a run (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per child (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--baseline",
        default="auto",
        metavar="REV|auto|none",
        help="the commit for 'before events' (auto: the parent of the commit adding "
        "livestats/events.py; none: leave it out)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    for name in ("calls", "repeats", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child is not None:
        _child(args.child, args.calls, args.repeats)
        return 0
    rev = _baseline_rev(args.baseline)
    variants = [v for v in VARIANTS if rev is not None or v != BASELINE]
    samples: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="livestats-before-events-") as tmp:
        before = Path(tmp)
        if rev is not None:
            _extract(rev, before)
        for round_ in range(1, args.rounds + 1):
            for variant in variants:
                tree = before if variant == BASELINE else ROOT
                result = _run_child(variant, args, tree)
                samples[variant].append(result["us_per_call"])
            print(f"round {round_}/{args.rounds} done", file=sys.stderr)
    summary = _summary(samples)
    _print(args, rev, summary)
    _common.write_json(
        args.json,
        "events_cost",
        calls=args.calls,
        repeats=args.repeats,
        rounds=args.rounds,
        baseline_rev=rev,
        samples_us_per_call=samples,
        summary=summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
