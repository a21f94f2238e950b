"""Run one workload: fresh directory and server, load from another process, figures out.

Each workload gets its own temporary directory, database and server, so no
run inherits another's rows, queue or memory, and the ceiling (an empty table
too) is a like-for-like comparison.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark import postgres, profile
from benchmark.load import DriverResult, DriverSpec, Phases, run_in_process
from benchmark.server import BenchmarkServer, FrameworkServer, NullServer, RssSample, RssSampler, ServerConfig
from benchmark.workloads import Workload

MIB = 1024


class _Profiling(Phases):
    """py-spy on the server's processes during the timed phase only."""

    def __init__(self, server: BenchmarkServer, directory: Path, name: str):
        pids = {label: process.pid for label, process in server.processes.items()}
        self.recorder = profile.Recorder(directory, name, pids)

    def started(self) -> None:
        self.recorder.__enter__()
        time.sleep(profile.ATTACH_SECONDS)  # let py-spy attach before the clock starts

    def finished(self) -> None:
        self.recorder.__exit__(None, None, None)


def run_workload(
    workload: Workload,
    *,
    config: ServerConfig,
    seed: int,
    keep_dir: bool = False,
    profile_dir: Path | None = None,
    run_name: str | None = None,
    temp_root: str = "/tmp",
    prepare: Callable[[BenchmarkServer], None] | None = None,
    sender: str = "wrk",
) -> dict[str, Any]:
    """Run `workload` on a fresh server; `prepare` changes its database before the load (e.g. drops an index)."""
    directory = Path(tempfile.mkdtemp(prefix=f"loggregator-bench-{workload.name}-", dir=temp_root))
    try:
        with (
            fresh_database(config) as config,
            _ceiling_server(NullServer, workload, directory, config) as null_server,
            _ceiling_server(FrameworkServer, workload, directory, config) as framework_server,
            BenchmarkServer(directory, config) as server,
        ):
            if prepare:
                prepare(server)
            spec = DriverSpec(
                url=server.url,
                workload=workload,
                seed=seed,
                event_table=server.event_table(),
                ceiling_database=str(directory / "ceiling.sqlite3"),
                null_url=null_server.url if null_server else None,
                framework_url=framework_server.url if framework_server else None,
                sender=sender,
            )
            profiling = _Profiling(server, profile_dir, run_name or workload.name) if profile_dir else None
            with RssSampler(server) as sampler:
                try:
                    driven = run_in_process(spec, profiling)
                finally:
                    if profiling:  # also when the driver failed before saying "finished"
                        profiling.finished()
        result = summarise(workload, config, driven, sampler.samples)
        if profiling:
            result["profile_seconds"] = profiling.recorder.stages()
        if keep_dir:
            result["directory"] = str(directory)
        return result
    finally:
        if not keep_dir:
            shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _ceiling_server(
    kind: type[BenchmarkServer], workload: Workload, directory: Path, config: ServerConfig
) -> Iterator[BenchmarkServer | None]:
    """A load or framework ceiling's server; none for the long run, whose figures are over time."""
    if workload.long_run:
        yield None
        return
    with kind(directory, config) as server:
        yield server


@contextmanager
def fresh_database(config: ServerConfig) -> Iterator[ServerConfig]:
    """The config with a fresh database for one workload (SQLite: the server makes its own file)."""
    if config.postgres_url is None:
        yield config
        return
    with postgres.scratch_database(config.postgres_url) as url:
        yield replace(config, database_url=url)


def summarise(
    workload: Workload, config: ServerConfig, driven: DriverResult, samples: list[RssSample]
) -> dict[str, Any]:
    before, after = driven.before, driven.after
    observed = {
        "received": after.get("received", 0) - before.get("received", 0),
        "unique": after.get("unique_processed", 0) - before.get("unique_processed", 0),
        "duplicates": after.get("duplicate_dropped", 0) - before.get("duplicate_dropped", 0),
        "queued": after.get("queued", 0),
    }
    expected = {"received": driven.events, "unique": driven.expected_unique, "duplicates": driven.expected_duplicates}
    problems = []
    if driven.error:
        problems.append(driven.error)
    if observed["received"] != expected["received"]:
        problems.append(f"received {observed['received']}, expected {expected['received']}")
    if observed["unique"] != expected["unique"]:
        problems.append(f"unique {observed['unique']}, expected {expected['unique']}")
    # A retried request whose first attempt landed is a real second copy (the
    # publisher's --verify allows the same slack); normally `resent` is 0.
    extra = observed["duplicates"] - expected["duplicates"]
    if not 0 <= extra <= driven.resent:
        problems.append(f"duplicates {observed['duplicates']}, expected {expected['duplicates']}")
    if observed["queued"]:
        problems.append(f"{observed['queued']} still queued")
    ok = not problems

    accept = driven.accept_seconds
    end_to_end = driven.end_to_end_seconds
    e2e_rate = driven.events / end_to_end if ok and end_to_end > 0 else None
    ceiling_rate = driven.ceiling_events_per_second
    load_rate = driven.events / driven.load_ceiling_seconds if driven.load_ceiling_seconds else None
    framework_rate = driven.events / driven.framework_ceiling_seconds if driven.framework_ceiling_seconds else None
    latencies = sorted(driven.latencies_ms)
    p50, p99 = driven.latency_percentiles_ms or (
        (percentile(latencies, 50), percentile(latencies, 99)) if latencies else (None, None)
    )
    during = [s for s in samples if s.at >= driven.started_at] or samples
    result: dict[str, Any] = {
        "workload": workload.name,
        "description": workload.description,
        "server": config.mode,
        "database": "postgresql" if config.postgres_url else "sqlite",
        "events": driven.events,
        "requests": driven.requests,
        "connections": driven.connections,
        "body_mib": round(driven.body_bytes / MIB / MIB, 1),
        "ok": ok,
        "problems": problems,
        "expected": expected,
        "observed": observed,
        "retries": driven.retries,
        "accept_seconds": round(accept, 3),
        "accept_events_per_second": round(driven.events / accept) if ok and accept > 0 else None,
        "end_to_end_seconds": round(end_to_end, 3) if ok else None,
        "end_to_end_events_per_second": round(e2e_rate) if e2e_rate else None,
        "latency_p50_ms": round(p50, 2) if p50 is not None else None,
        "latency_p99_ms": round(p99, 2) if p99 is not None else None,
        "ceiling_events_per_second": round(ceiling_rate),
        "ceiling_seconds": round(driven.ceiling_seconds, 3),
        "percent_of_ceiling": round(100 * e2e_rate / ceiling_rate, 1) if e2e_rate and ceiling_rate else None,
        "load_ceiling_events_per_second": round(load_rate) if load_rate else None,
        "percent_of_load_ceiling": round(100 * e2e_rate / load_rate, 1) if e2e_rate and load_rate else None,
        "framework_ceiling_events_per_second": round(framework_rate) if framework_rate else None,
        "percent_of_framework_ceiling": (
            round(100 * e2e_rate / framework_rate, 1) if e2e_rate and framework_rate else None
        ),
        "sender": driven.sender,
        "rss_max_mib": _rss_max(during),
    }
    if workload.long_run:
        result["long_run"] = _long_run(driven, during)
    return result


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ordered list."""
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


def _rss_max(samples: list[RssSample]) -> dict[str, float]:
    peaks: dict[str, int] = {}
    for sample in samples:
        for label, kib in sample.kib.items():
            peaks[label] = max(peaks.get(label, 0), kib)
    return {label: round(kib / MIB, 1) for label, kib in sorted(peaks.items())}


def _long_run(driven: DriverResult, samples: list[RssSample]) -> dict[str, Any]:
    """Throughput and memory per slice of processed events; reads at the start and at the end."""
    timeline = driven.timeline
    base_processed = driven.before["unique_processed"] + driven.before["duplicate_dropped"]
    step = 100_000 if driven.events >= 500_000 else max(1, driven.events // 10)
    slices = []
    previous_time, reached = 0.0, 0
    for _seconds, _received, processed in timeline:
        done = processed - base_processed
        while reached + step <= done:
            reached += step
            at = _crossing(timeline, base_processed + reached, start=base_processed)
            rss = _rss_near(samples, driven.started_at + at)
            slices.append(
                {
                    "processed": reached,
                    "seconds": round(at, 2),
                    "events_per_second": round(step / (at - previous_time)) if at > previous_time else None,
                    "rss_mib": {label: round(kib / MIB, 1) for label, kib in sorted(rss.items())},
                }
            )
            previous_time = at
    reads = [
        {
            "stored": read.stored,
            "stats_ms": round(read.stats_ms, 2),
            "events_ms": round(read.events_ms, 2),
            "page": read.events_page,
        }
        for read in driven.reads
    ]
    ratios = {}
    if len(reads) == 2 and reads[0]["stats_ms"] and reads[0]["events_ms"]:
        ratios = {
            "stats": round(reads[1]["stats_ms"] / reads[0]["stats_ms"], 2),
            "events": round(reads[1]["events_ms"] / reads[0]["events_ms"], 2),
        }
    first = samples[0].kib if samples else {}
    last = samples[-1].kib if samples else {}
    return {
        "slices": slices,
        "reads": reads,
        "read_ratio": ratios,
        "rss_start_mib": {label: round(kib / MIB, 1) for label, kib in sorted(first.items())},
        "rss_end_mib": {label: round(kib / MIB, 1) for label, kib in sorted(last.items())},
        "rss_samples": len(samples),
        "rss_median_total_mib": round(statistics.median(sum(s.kib.values()) for s in samples) / MIB, 1)
        if samples
        else None,
    }


def _crossing(timeline: list[tuple[float, int, int]], processed: int, *, start: int) -> float:
    """When `processed` was reached, interpolated between two /stats polls (`start` at 0 s)."""
    previous = (0.0, 0, start)
    for point in timeline:
        if point[2] >= processed:
            (t0, _, p0), (t1, _, p1) = previous, point
            if p1 == p0:
                return t1
            return t0 + (t1 - t0) * (processed - p0) / (p1 - p0)
        previous = point
    return timeline[-1][0]


def _rss_near(samples: list[RssSample], moment: float) -> dict[str, int]:
    if not samples:
        return {}
    return min(samples, key=lambda sample: abs(sample.at - moment)).kib
