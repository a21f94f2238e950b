"""The `otlp` workload: OTLP/HTTP protobuf exports against /publish batches of the same records.

The records look like what an OTel SDK ships: one service's resource per
export of 5000 records, a message body, a severity, five attributes, trace and
span ids. The /publish side sends exactly the events the OTLP mapping makes
of them (otlp.mapping, before the clock), so both sides store the same rows
and the ratio of their end-to-end rates is the cost of OTLP itself: protobuf
decoding and the mapping. Each side gets a fresh server and database, one after
the other in the same run; the figure to read is `otlp` as a percentage of
`otlp-publish` (the issue's goal: at least 80%).

No Django here: like benchmark.load, this only talks HTTP to the servers.
"""

from __future__ import annotations

import itertools
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from benchmark.runner import fresh_database
from benchmark.server import BenchmarkServer, ServerConfig
from otlp.mapping import map_export

NAME = "otlp"
PUBLISH_NAME = "otlp-publish"
RECORDS_PER_EXPORT = 5000
CONNECTIONS = 2
WARM_UP_RECORDS = 10
FULL_RECORDS = 100_000
QUICK_RECORDS = 10_000
SERVICES = ("orders-api", "payments-api", "users-api", "inventory", "shipping", "auth", "billing", "search")
SEVERITIES = ((9, "INFO"), (9, "INFO"), (9, "INFO"), (5, "DEBUG"), (13, "WARN"), (17, "ERROR"))
POLL_INTERVAL = 0.02
# Generous: a deadline turns a stuck server into a failure; it measures nothing.
DEADLINE = 1800.0


@dataclass(frozen=True)
class Side:
    name: str
    path: str
    content_type: str
    bodies: list[bytes]
    # A small export of its own, sent on every connection before the clock starts.
    warm_up: bytes


def build_exports(records: int, *, seed: int, services=SERVICES) -> list[ExportLogsServiceRequest]:
    rng = random.Random(seed)
    start = 1_777_636_800 * 10**9
    exports = []
    for number, first in enumerate(range(0, records, RECORDS_PER_EXPORT)):
        service = services[number % len(services)]
        export = ExportLogsServiceRequest()
        resource_logs = export.resource_logs.add()
        resource_logs.resource.attributes.extend(
            _attributes({"service.name": service, "service.instance.id": f"{service}-{number % 3}", "host.name": "h1"})
        )
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name, scope_logs.scope.version = "app.requests", "1.4.2"
        for n in range(first, min(first + RECORDS_PER_EXPORT, records)):
            severity_number, severity_text = SEVERITIES[n % len(SEVERITIES)]
            status, millis = rng.choice((200, 200, 201, 404, 500)), round(rng.uniform(0.5, 900.0), 3)
            record = scope_logs.log_records.add(
                time_unix_nano=start + n * 1000 + rng.randrange(1000),
                severity_number=severity_number,
                severity_text=severity_text,
                trace_id=rng.randbytes(16),
                span_id=rng.randbytes(8),
                flags=1,
            )
            record.body.string_value = f"GET /api/{service}/{n} answered {status} in {millis} ms"
            record.attributes.extend(
                _attributes(
                    {
                        "http.request.method": "GET",
                        "url.path": f"/api/{service}/{n}",
                        "http.response.status_code": status,
                        "duration_ms": millis,
                        "user.id": f"u{rng.randrange(100_000)}",
                    }
                )
            )
        exports.append(export)
    return exports


def _attributes(values: dict) -> list[KeyValue]:
    kinds = {str: "string_value", int: "int_value", float: "double_value"}
    return [KeyValue(key=key, value=AnyValue(**{kinds[type(value)]: value})) for key, value in values.items()]


def sides(records: int, *, seed: int) -> list[Side]:
    """The /publish side and the OTLP side, every body serialised."""
    exports = build_exports(records, seed=seed)
    (warm_up,) = build_exports(WARM_UP_RECORDS, seed=seed + 1, services=("benchmark-warmup",))
    received_at = datetime.now(UTC)
    encode = msgspec.json.Encoder().encode

    def as_publish(export: ExportLogsServiceRequest) -> bytes:
        return encode(map_export(export, topic_attribute="loggregator.topic", received_at=received_at).events)

    return [
        Side(PUBLISH_NAME, "/publish", "application/json", [as_publish(e) for e in exports], as_publish(warm_up)),
        Side(
            NAME,
            "/v1/logs",
            "application/x-protobuf",
            [e.SerializeToString() for e in exports],
            warm_up.SerializeToString(),
        ),
    ]


def run(config: ServerConfig, *, seed: int, records: int, temp_root: str = "/tmp") -> list[dict[str, Any]]:
    """Both sides, each on a fresh server; the OTLP result says its percentage of /publish."""
    results = [_run_side(side, records, config, temp_root) for side in sides(records, seed=seed)]
    publish, otlp = results
    if publish["ok"] and otlp["ok"]:
        rate, base = otlp["end_to_end_events_per_second"], publish["end_to_end_events_per_second"]
        otlp["percent_of_publish"] = round(100 * rate / base, 1)
    return results


def _run_side(side: Side, records: int, config: ServerConfig, temp_root: str) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix=f"loggregator-bench-{side.name}-", dir=temp_root))
    try:
        with fresh_database(config) as side_config, BenchmarkServer(directory, side_config) as server:
            session = requests.Session()
            problems = _send(server.url, side, [side.warm_up] * CONNECTIONS)
            before = _wait_for_stats(session, server.url, WARM_UP_RECORDS * CONNECTIONS)
            started = time.monotonic()
            problems += _send(server.url, side, side.bodies)
            accepted = time.monotonic() - started
            target = before["received"] + records
            after = _wait_for_stats(session, server.url, target) if not problems else _stats(session, server.url)
            end_to_end = time.monotonic() - started
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    unique = after["unique_processed"] - before["unique_processed"]
    duplicates = after["duplicate_dropped"] - before["duplicate_dropped"]
    if not problems and (unique, duplicates) != (records, 0):
        problems.append(f"unique {unique}, duplicates {duplicates}: expected {records} and 0")
    ok = not problems
    return {
        "workload": side.name,
        "description": f"{records:,} records in OTLP exports of {RECORDS_PER_EXPORT}, as {side.path} bodies",
        "server": config.mode,
        "database": "postgresql" if config.postgres_url else "sqlite",
        "events": records,
        "requests": len(side.bodies),
        "connections": CONNECTIONS,
        "body_mib": round(sum(map(len, side.bodies)) / 2**20, 1),
        "ok": ok,
        "problems": problems,
        "accept_events_per_second": round(records / accepted) if ok else None,
        "end_to_end_seconds": round(end_to_end, 3) if ok else None,
        "end_to_end_events_per_second": round(records / end_to_end) if ok else None,
        **dict.fromkeys(
            (
                "latency_p50_ms",
                "latency_p99_ms",
                "ceiling_events_per_second",
                "percent_of_ceiling",
                "load_ceiling_events_per_second",
                "percent_of_load_ceiling",
                "framework_ceiling_events_per_second",
                "percent_of_framework_ceiling",
            )
        ),
        "rss_max_mib": {},
    }


def _send(url: str, side: Side, bodies: list[bytes]) -> list[str]:
    """Send `bodies` over CONNECTIONS keep-alive connections, the next body to whichever is free."""
    problems: list[str] = []
    next_body = itertools.count()

    def sender() -> None:
        with requests.Session() as session:
            while not problems and (i := next(next_body)) < len(bodies):
                response = session.post(
                    url + side.path, data=bodies[i], headers={"Content-Type": side.content_type}, timeout=300
                )
                if response.status_code not in (200, 202):
                    problems.append(f"request {i}: HTTP {response.status_code}: {response.text[:200]}")

    threads = [threading.Thread(target=sender, name=f"{side.name}-sender-{n}") for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return problems


def _wait_for_stats(session: requests.Session, url: str, received: int) -> dict[str, int]:
    """/stats once `received` events arrived and none is queued."""
    deadline = time.monotonic() + DEADLINE
    while True:
        stats = _stats(session, url)
        if stats["received"] >= received and stats["queued"] == 0:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not process {received} events within {DEADLINE:.0f} s")
        time.sleep(POLL_INTERVAL)  # poll interval: the end is what /stats says


def _stats(session: requests.Session, url: str) -> dict[str, int]:
    response = session.get(f"{url}/stats", timeout=60)
    response.raise_for_status()
    return response.json()
