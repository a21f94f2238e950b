"""Print benchmark results as tables a person can read, and check them against the targets."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Write = Callable[[str], None]

# The floors on this machine: reported, never asserted by tests.
TARGET_BATCHED_EVENTS_PER_SECOND = {"sqlite": 100_000, "postgresql": 50_000}
TARGET_BATCHED_PERCENT_OF_CEILING = 30.0
TARGET_SINGLE_EVENTS_PER_SECOND = 5_000
TARGET_SINGLE_PERCENT_OF_FRAMEWORK = 85.0
TARGET_BATCHED_ACCEPT_EVENTS_PER_SECOND = 150_000
TARGET_BATCH500_ACCEPT_EVENTS_PER_SECOND = 100_000
TARGET_READ_RATIO = 2.0
TARGET_RSS_MIB = 200.0
TARGET_OTLP_PERCENT_OF_PUBLISH = 80.0

COLUMNS = (
    ("workload", "{workload}", "<"),
    ("run", "{run}", ">"),
    ("events", "{events:,}", ">"),
    ("reqs", "{requests:,}", ">"),
    ("conn", "{connections}", ">"),
    ("accept ev/s", "{accept_events_per_second}", ">"),
    ("e2e s", "{end_to_end_seconds}", ">"),
    ("e2e ev/s", "{end_to_end_events_per_second}", ">"),
    ("p50 ms", "{latency_p50_ms}", ">"),
    ("p99 ms", "{latency_p99_ms}", ">"),
    ("ceiling ev/s", "{ceiling_events_per_second}", ">"),
    ("% ceil", "{percent_of_ceiling}", ">"),
    ("load ceil ev/s", "{load_ceiling_events_per_second}", ">"),
    ("% load", "{percent_of_load_ceiling}", ">"),
    ("fw ceil ev/s", "{framework_ceiling_events_per_second}", ">"),
    ("% fw", "{percent_of_framework_ceiling}", ">"),
    ("counts", "{counts}", "<"),
    ("max RSS MiB", "{rss}", ">"),
)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _cells(result: dict[str, Any]) -> list[str]:
    values = {key: _number(value) for key, value in result.items()}
    values["events"] = result["events"]
    values["requests"] = result["requests"]
    values["counts"] = "exact" if result["ok"] else "FAILED"
    values["rss"] = _number(max(result["rss_max_mib"].values(), default=None))
    values.setdefault("run", "1")
    return [template.format(**values) for _, template, _ in COLUMNS]


def table(rows: list[list[str]]) -> list[str]:
    headers = [name for name, _, _ in COLUMNS]
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if align == "<" else cell.rjust(width)
            for cell, width, (_, _, align) in zip(cells, widths, COLUMNS)
        ).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def medians(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per workload, the median of the repeated runs' throughputs and ratio (failed runs excluded)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_name.setdefault(result["workload"], []).append(result)
    summary = {}
    for name, runs in by_name.items():
        good = [run for run in runs if run["ok"]]
        summary[name] = {
            "runs": len(runs),
            "failed": len(runs) - len(good),
            **{
                key: _median([run[key] for run in good])
                for key in (
                    "end_to_end_events_per_second",
                    "accept_events_per_second",
                    "percent_of_ceiling",
                    "load_ceiling_events_per_second",
                    "framework_ceiling_events_per_second",
                    "percent_of_framework_ceiling",
                )
            },
        }
    return summary


def targets(results: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met?) for each of the issue's floors; None when not measured."""
    summary = medians(results)
    checks: list[tuple[str, str, bool | None]] = []

    def median_of(name: str, key: str) -> float | None:
        return summary.get(name, {}).get(key)

    rate = median_of("batch5000", "end_to_end_events_per_second")
    percent = median_of("batch5000", "percent_of_ceiling")
    database = results[0].get("database", "sqlite") if results else "sqlite"
    target = TARGET_BATCHED_EVENTS_PER_SECOND[database]
    checks.append(
        (
            f"batch5000 end to end on {database} >= {target:,} ev/s",
            _number(round(rate)) if rate else "not measured",
            None if rate is None else rate >= target,
        )
    )
    checks.append(
        (
            f"batch5000 >= {TARGET_BATCHED_PERCENT_OF_CEILING:.0f}% of the raw-SQLite ceiling",
            f"{percent:.1f}%" if percent else "not measured",
            None if percent is None else percent >= TARGET_BATCHED_PERCENT_OF_CEILING,
        )
    )
    for name, floor in (
        ("batch5000", TARGET_BATCHED_ACCEPT_EVENTS_PER_SECOND),
        ("batch500x4", TARGET_BATCH500_ACCEPT_EVENTS_PER_SECOND),
    ):
        rate = median_of(name, "accept_events_per_second")
        checks.append(
            (
                f"{name} accepted >= {floor:,} ev/s",
                _number(round(rate)) if rate else "not measured",
                None if rate is None else rate >= floor,
            )
        )
    rate = median_of("single16", "end_to_end_events_per_second")
    measured = _number(round(rate)) if rate else "not measured"
    if rate and (load := median_of("single16", "load_ceiling_events_per_second")):
        measured += f" (the load driver alone, against a server that does nothing: {_number(round(load))})"
    checks.append(
        (
            f"single16 end to end >= {TARGET_SINGLE_EVENTS_PER_SECOND:,} ev/s",
            measured,
            None if rate is None else rate >= TARGET_SINGLE_EVENTS_PER_SECOND,
        )
    )
    percent = median_of("single16", "percent_of_framework_ceiling")
    framework = median_of("single16", "framework_ceiling_events_per_second")
    checks.append(
        (
            f"single16 end to end >= {TARGET_SINGLE_PERCENT_OF_FRAMEWORK:.0f}% of a bare Django view",
            f"{percent:.1f}% of {_number(round(framework))}" if percent and framework else "not measured",
            None if percent is None else percent >= TARGET_SINGLE_PERCENT_OF_FRAMEWORK,
        )
    )
    if otlp := [r["percent_of_publish"] for r in results if r.get("percent_of_publish") is not None]:
        percent = _median(otlp)
        checks.append(
            (
                f"otlp end to end >= {TARGET_OTLP_PERCENT_OF_PUBLISH:.0f}% of /publish with the same records",
                f"{percent:.1f}%",
                percent >= TARGET_OTLP_PERCENT_OF_PUBLISH,
            )
        )
    long_runs = [r for r in results if r.get("long_run") and r["ok"]]
    for result in long_runs[-1:]:
        long_run = result["long_run"]
        for key, name in (("stats", "/stats"), ("events", "/events first page")):
            ratio = long_run["read_ratio"].get(key)
            checks.append(
                (
                    f"{name} at the end <= {TARGET_READ_RATIO:.0f}x its latency at 1k",
                    f"{ratio}x" if ratio is not None else "not measured",
                    None if ratio is None else ratio <= TARGET_READ_RATIO,
                )
            )
        peak = max(result["rss_max_mib"].values(), default=0.0)
        checks.append(
            (
                f"server RSS under {TARGET_RSS_MIB:.0f} MiB per process over the long run",
                f"largest {peak} MiB",
                peak < TARGET_RSS_MIB,
            )
        )
    return checks


def write_report(results: list[dict[str, Any]], write: Write) -> None:
    if results:
        write(f"Server: {results[0]['server']}; load from a separate process ({results[0].get('sender')}).")
        write("")
    rows = []
    counts: dict[str, int] = {}
    for result in results:
        counts[result["workload"]] = counts.get(result["workload"], 0) + 1
        rows.append(_cells({**result, "run": str(counts[result["workload"]])}))
    for line in table(rows):
        write(line)

    for result in results:
        if not result["ok"]:
            write(f"FAILED {result['workload']}: {'; '.join(result['problems'])}")

    summary = medians(results)
    if any(entry["runs"] > 1 for entry in summary.values()):
        write("")
        write("Medians of repeated runs:")
        for name, entry in summary.items():
            write(
                f"  {name}: e2e {_number(_rounded(entry['end_to_end_events_per_second']))} ev/s, "
                f"accept {_number(_rounded(entry['accept_events_per_second']))} ev/s, "
                f"{_number(entry['percent_of_ceiling'])}% of ceiling ({entry['runs']} runs, {entry['failed']} failed)"
            )

    for result in results:
        if result.get("long_run"):
            _write_long_run(result, write)

    for result in results:
        if result.get("profile_seconds"):
            _write_profile(result, write)

    write("")
    write("Targets (floors from the issue; medians where runs repeat):")
    for target, measured, met in targets(results):
        verdict = "-" if met is None else ("met" if met else "MISSED")
        write(f"  [{verdict:>6}] {target}: {measured}")


def _write_long_run(result: dict[str, Any], write: Write) -> None:
    long_run = result["long_run"]
    write("")
    write(f"{result['workload']}: {result['events']:,} events sent, {result['observed']['unique']:,} stored")
    write("  processed   at s    ev/s in slice   RSS MiB by process")
    for piece in long_run["slices"]:
        rss = ", ".join(f"{label} {mib}" for label, mib in piece["rss_mib"].items())
        write(f"  {piece['processed']:>9,}  {piece['seconds']:>6}  {_number(piece['events_per_second']):>14}   {rss}")
    for read in long_run["reads"]:
        write(
            f"  reads at {read['stored']:,} stored: /stats {read['stats_ms']} ms, "
            f"/events first page ({read['page']} events) {read['events_ms']} ms (medians)"
        )
    if long_run["read_ratio"]:
        ratio = long_run["read_ratio"]
        write(f"  end / start latency: /stats {ratio['stats']}x, /events {ratio['events']}x")
    peaks = ", ".join(f"{label} {mib}" for label, mib in result["rss_max_mib"].items())
    write(f"  max RSS MiB: {peaks}")


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def _write_profile(result: dict[str, Any], write: Write) -> None:
    stages = result["profile_seconds"]
    total = sum(stages.values()) or 1.0
    per = result["events"] / 5000
    write("")
    write(f"{result['workload']}: where the server threads' time went (py-spy --idle, thread-seconds)")
    write(f"  {'stage':<52} {'s':>7} {'%':>6} {'ms per 5000 events':>19}")
    for stage, seconds in stages.items():
        write(f"  {stage:<52} {seconds:>7.2f} {100 * seconds / total:>6.1f} {1000 * seconds / per:>19.1f}")


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 1) if present else None
