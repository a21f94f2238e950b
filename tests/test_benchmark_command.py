"""manage.py benchmark: the harness runs, checks counts exactly and reports what it promises; no speeds asserted."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from benchmark.ceiling import database_rows
from benchmark.load import DriverResult
from benchmark.profile import IDLE_LEAVES, LOOP_LEAVES, LOOP_STAGE, STAGES, classify, stage_counts
from benchmark.report import write_report
from benchmark.runner import summarise
from benchmark.server import ServerConfig
from benchmark.workloads import FULL, QUICK, build_plan
from tests.servers import PROJECT_DIR

RESULT_KEYS = {
    "workload",
    "events",
    "requests",
    "connections",
    "ok",
    "expected",
    "observed",
    "accept_seconds",
    "accept_events_per_second",
    "end_to_end_seconds",
    "end_to_end_events_per_second",
    "latency_p50_ms",
    "latency_p99_ms",
    "ceiling_events_per_second",
    "percent_of_ceiling",
    "load_ceiling_events_per_second",
    "percent_of_load_ceiling",
    "rss_max_mib",
}


def run_benchmark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "benchmark", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_quick_run_reports_exact_counts_as_json():
    finished = run_benchmark("--quick", "--workloads", "batch5000", "--events", "2000", "--seed", "7", "--json")

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    [result] = report["results"]
    assert result.keys() >= RESULT_KEYS
    assert result["workload"] == "batch5000"
    assert result["ok"] is True
    assert result["events"] == 2000
    assert result["expected"] == {"received": 2000, "unique": 1500, "duplicates": 500}
    assert result["observed"] == {"received": 2000, "unique": 1500, "duplicates": 500, "queued": 0}
    assert result["end_to_end_seconds"] >= result["accept_seconds"] > 0
    assert result["ceiling_events_per_second"] > 0
    # The same requests went to the null server first: a real send, at a real rate.
    assert result["load_ceiling_events_per_second"] > 0
    assert result["percent_of_load_ceiling"] > 0
    assert "gunicorn master" in result["rss_max_mib"]
    assert report["medians"]["batch5000"]["runs"] == 1


@pytest.mark.slow
def test_the_long_run_reports_slices_reads_and_memory():
    finished = run_benchmark("--quick", "--workloads", "million", "--events", "3000", "--consumers", "1", "--json")

    assert finished.returncode == 0, finished.stderr
    [result] = json.loads(finished.stdout)["results"]
    assert result["ok"] is True
    assert "run_consumer-1" in result["rss_max_mib"]
    assert "1 run_consumer process" in result["server"]
    long_run = result["long_run"]
    assert [piece["processed"] for piece in long_run["slices"]][-1] == result["events"]
    first, last = long_run["reads"]
    assert first["page"] == last["page"] == 1000
    assert last["stored"] - first["stored"] == result["observed"]["unique"]
    assert set(long_run["read_ratio"]) == {"stats", "events"}


def test_it_rejects_unknown_workloads():
    with pytest.raises(CommandError, match="--workloads"):
        call_command("benchmark", "--workloads", "batch5000,nonsense")


def test_plans_count_duplicates_from_the_bodies():
    plan = build_plan(QUICK["mixed"], seed=3)

    assert plan.events == QUICK["mixed"].events
    assert plan.duplicates == round(plan.events * 0.25)
    assert plan.unique + plan.duplicates == plan.events
    # Publisher-like rounds: some single events, some batches of up to 500.
    assert 1 in plan.sizes and max(plan.sizes) <= 500
    assert all(body[:1] == (b"{" if size == 1 else b"[") for body, size in zip(plan.bodies, plan.sizes))


def test_the_long_run_sends_enough_batches_to_store_its_target():
    million = FULL["million"]
    assert million.events % 5000 == 0
    assert million.events * 0.75 >= 1_000_000
    assert million.with_events(20_000).events == 30_000


def test_ceiling_rows_are_in_the_aggregators_database_form():
    body = (
        b'{"topic": "a.b", "event_id": "7F1C7C1E-4A7E-4C55-9A0E-2F1F8E0B6C11", '
        b'"timestamp": "2026-11-26T12:00:00.000001Z", "source": "svc-a", "payload": {"n": 1}}'
    )

    assert database_rows(body) == [
        ("a.b", "7f1c7c1e4a7e4c559a0e2f1f8e0b6c11", "2026-11-26 12:00:00.000001", "svc-a", '{"n": 1}')
    ]


def driven(**measured) -> DriverResult:
    """What a load driver might return for 100 events of which 25 are duplicates."""
    return DriverResult(
        **{
            "workload": "batch5000",
            "events": 100,
            "requests": 1,
            "connections": 1,
            "body_bytes": 1000,
            "expected_unique": 75,
            "expected_duplicates": 25,
            "ceiling_events_per_second": 1000.0,
            "ceiling_seconds": 0.1,
            "accept_seconds": 0.5,
            "end_to_end_seconds": 1.0,
            "latencies_ms": [500.0],
            "before": {"received": 0, "unique_processed": 0, "duplicate_dropped": 0, "queued": 0},
            "after": {"received": 100, "unique_processed": 75, "duplicate_dropped": 25, "queued": 0},
            **measured,
        }
    )


def test_the_single_event_target_shows_what_the_load_driver_and_the_framework_alone_reach():
    run = driven(
        workload="single16",
        requests=100,
        connections=16,
        load_ceiling_seconds=0.125,
        framework_ceiling_seconds=0.16,
        end_to_end_seconds=0.2,
    )

    result = summarise(FULL["single16"], ServerConfig(), run, [])
    lines = []
    write_report([result], lines.append)

    assert result["load_ceiling_events_per_second"] == 800
    assert result["percent_of_load_ceiling"] == 62.5
    assert result["framework_ceiling_events_per_second"] == 625
    assert result["percent_of_framework_ceiling"] == 80.0
    single = next(line for line in lines if "single16 end to end >= 5,000" in line)
    assert single.endswith(">= 5,000 ev/s: 500 (the load driver alone, against a server that does nothing: 800)")
    framework = next(line for line in lines if "of a bare Django view" in line)
    assert framework == "  [MISSED] single16 end to end >= 85% of a bare Django view: 80.0% of 625"


def test_percentiles_reported_by_the_sender_are_the_latencies():
    result = summarise(FULL["batch5000"], ServerConfig(), driven(latencies_ms=[], latency_percentiles_ms=(2.5, 9)), [])

    assert (result["latency_p50_ms"], result["latency_p99_ms"]) == (2.5, 9)


def test_a_wrong_count_is_a_failure_not_a_figure():
    run = driven(after={"received": 100, "unique_processed": 76, "duplicate_dropped": 24, "queued": 0})

    result = summarise(FULL["batch5000"], ServerConfig(), run, [])
    lines = []
    write_report([result], lines.append)

    assert result["ok"] is False
    assert result["end_to_end_events_per_second"] is None
    assert result["percent_of_ceiling"] is None
    assert "unique 76, expected 75" in result["problems"][0]
    assert any(line.startswith("batch5000") and "FAILED" in line for line in lines)


def test_profiles_are_summed_per_stage_of_the_write_path():
    raw = "\n".join(
        [
            'process 1:"gunicorn";Thread.run (threading.py:982);Consumer.run (events/consumer.py:38);'
            "process_next_batch (events/store.py:68);store_events (events/store.py:34);"
            "SQLiteCursorWrapper.executemany (django/db/backends/sqlite3/base.py:371) 7",
            'process 1:"gunicorn";WSGIHandler.__call__ (django/core/handlers/wsgi.py:124);'
            "PublishView.post (events/views.py:50);enqueue (events/intake.py:80);"
            "add_received (events/counters.py:35) 2",
            'process 1:"gunicorn";Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 5',
            'process 1:"gunicorn";ThreadWorker.handle (gunicorn/workers/gthread.py:553);'
            "Message.parse_headers (gunicorn/http/message.py:364) 3",
            'process 1:"gunicorn";UvicornWorker.run (uvicorn_worker/_workers.py:66);'
            "Runner.run (asyncio/runners.py:118) 4",
            'process 1:"gunicorn";Runner.run (asyncio/runners.py:118);'
            "HttpToolsProtocol.data_received (uvicorn/protocols/http/httptools_impl.py:130) 6",
        ]
    )

    assert stage_counts(raw) == {
        "consumer: insert events": 7,
        "publish: counters": 2,
        "idle: threads with nothing to do": 5,
        "HTTP, Django and DRF": 9,
        LOOP_STAGE: 4,  # the loop's own C code; what it calls back in Python is not
    }


@pytest.mark.parametrize(
    "stage, marks",
    [*STAGES, ("idle: threads with nothing to do", IDLE_LEAVES), (LOOP_STAGE, LOOP_LEAVES)],
    ids=lambda value: str(value)[:40],
)
def test_each_profile_stage_names_functions_that_exist_where_py_spy_finds_them(stage, marks):
    for function, path in marks:
        if not function:  # a whole package
            assert any(Path(entry or ".", path).is_dir() for entry in sys.path), path
            continue
        # py-spy prints a frame's file relative to the sys.path entry it was imported from.
        source = next((Path(entry or ".", path) for entry in sys.path if Path(entry or ".", path).is_file()), None)
        assert source is not None, f"{stage}: no {path} on sys.path"
        line = next(
            n for n, text in enumerate(source.read_text().splitlines(), 1) if re.search(rf"def {function}\b", text)
        )
        if stage.startswith("idle"):
            assert classify(["Thread.run (threading.py:1)", f"{function} ({path}:{line})"]) == stage
        else:
            assert classify([f"{function} ({path}:{line})"]) == stage
