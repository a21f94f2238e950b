"""The benchmark's otlp workload: both sides carry the same records, and a run checks counts exactly."""

import json
import subprocess
import sys

import msgspec
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from benchmark.otlp_workload import NAME, PUBLISH_NAME, RECORDS_PER_EXPORT, sides
from tests.servers import PROJECT_DIR


def test_the_publish_side_sends_exactly_the_events_the_otlp_side_becomes():
    publish, otlp = sides(RECORDS_PER_EXPORT + 10, seed=3)

    assert (publish.path, otlp.path) == ("/publish", "/v1/logs")
    published = [event for body in publish.bodies for event in msgspec.json.decode(body)]
    records = [
        record
        for body in otlp.bodies
        for resource_logs in ExportLogsServiceRequest.FromString(body).resource_logs
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
    ]
    assert len(published) == len(records) == RECORDS_PER_EXPORT + 10
    assert len({event["event_id"] for event in published}) == len(published)
    assert [event["payload"]["body"] for event in published] == [record.body.string_value for record in records]


@pytest.mark.slow
def test_a_run_reports_both_sides_with_exact_counts_and_the_ratio():
    finished = subprocess.run(
        [sys.executable, "manage.py", "benchmark", "--workloads", "otlp", "--events", "1000", "--seed", "5", "--json"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert finished.returncode == 0, finished.stderr
    results = {result["workload"]: result for result in json.loads(finished.stdout)["results"]}
    assert set(results) == {PUBLISH_NAME, NAME}
    assert all(result["ok"] and result["events"] == 1000 for result in results.values())
    assert results[NAME]["percent_of_publish"] > 0
