"""The tail workload's pieces that run outside the benchmark's own process."""

import os
import subprocess
import sys

from harness.processes import PROJECT_DIR


def test_the_stream_holder_imports_in_a_process_without_django():
    # The holder runs in a spawned process, which imports its module before
    # (and without) Django's setup: a Django import there fails the workload.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    code = "import sys, benchmark.stream_holder; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_each_run_with_streams_is_compared_with_the_runs_on_either_side():
    from benchmark.tail_workload import against_neighbours

    assert against_neighbours([90.0, 60.0, 100.0], [100.0, 80.0, 40.0, 100.0]) == [100.0, 100.0, 142.85714285714286]
    assert against_neighbours([90.0, None], [100.0, 80.0, 40.0]) == [100.0, None]  # a failed run
    assert against_neighbours([90.0], [100.0, None]) == [None]


def test_the_report_shows_the_cpu_of_each_run_the_servers_the_clients_and_the_machines():
    from benchmark.tail_workload import write_tail_report

    lines = []
    write_tail_report(
        {
            "server": "2 gunicorn asgi workers",
            "latency": {"single": {"p50_ms": 60.0, "p99_ms": 120.0, "probes": 900}},
            "streams": 200,
            "matching_streams": 20,
            "events_per_run": 100_000,
            "end_to_end_events_per_second": {"without streams 1": 50_000, "with streams 1": 45_000},
            "server_cpu_us_per_event": {"without streams 1": 28.0, "with streams 1": 35.0, "without streams 2": 28.0},
            "cpu_percent_each_round": [125.0],
            "stream_clients_cpu_us_per_event": {"with streams 1": 0.9},
            "machine_idle_percent": {"without streams 1": 12.5, "with streams 1": 10.0, "without streams 2": None},
            "percent_each_round": [90.0],
            "percent_with_streams": 90.0,
            "idle_queries_per_second": {"with_streams": None, "without": None},
            "ok": True,
            "problems": [],
        },
        lines.append,
    )
    assert (
        "  server CPU per stored event (us): without streams 1 28.0, with streams 1 35.0, without streams 2 28.0;"
        " with streams, 125.0% of the runs without on either side"
    ) in lines
    assert (
        "  the stream clients' CPU per stored event (us; the benchmark's, on the server's CPUs): with streams 1 0.9"
        in lines
    )
    assert (
        "  machine idle while each run's load played:"
        " without streams 1 12.5%, with streams 1 10.0%, without streams 2 -"  # that run's driver failed early
    ) in lines
    assert "  [   met] batched end to end with 200 streams >= 90%: 90.0%" in lines


def test_the_machine_idle_share_covers_the_timed_phase_only():
    from benchmark.tail_workload import _MachineTimes

    times = _MachineTimes()
    assert times.idle_percent() is None  # the driver failed before its timed phase
    times.started()
    sum(range(2_000_000))  # some work between the two readings
    times.finished()
    assert 0.0 <= times.idle_percent() <= 100.0
