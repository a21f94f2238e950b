"""Run publishing rounds: send, report, optionally verify, pause, repeat."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tqdm import tqdm

from publisher import verify
from publisher.client import AggregatorClient, Interrupted
from publisher.generator import EventGenerator, Round

logger = logging.getLogger(__name__)

Write = Callable[[str], None]
MODES = ("random", "single", "batch")


@dataclass
class RoundReport:
    """What one round did. `unique` and `duplicates` count confirmed events."""

    number: int
    mode: str
    planned: int
    sent: int = 0
    unique: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    # Events in retried requests whose earlier attempt may have landed.
    resent: int = 0
    # Events of a request abandoned on stop while waiting to retry.
    unconfirmed: int = 0
    seconds: float = 0.0
    stopped: bool = False
    verdict: verify.Verdict | None = None
    verify_note: str = ""

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        line = (
            f"round {self.number}: sent={self.sent} unique={self.unique} "
            f"duplicates={self.duplicates} requests={self.requests} retries={self.retries} "
            f"seconds={self.seconds:.2f} events/s={rate:.0f} mode={self.mode} resent={self.resent}"
        )
        if self.stopped:
            line += f" stopped after {self.sent} of {self.planned} events"
            if self.unconfirmed:
                line += f", {self.unconfirmed} unconfirmed"
        if self.verdict is not None:
            line += f" verify={'ok' if self.verdict.ok else 'FAILED'} ({self.verdict.message})"
        elif self.verify_note:
            line += f" verify={self.verify_note}"
        return line


@dataclass
class RunResult:
    rounds: list[RoundReport] = field(default_factory=list)

    @property
    def verify_failures(self) -> int:
        return sum(1 for r in self.rounds if r.verdict is not None and not r.verdict.ok)

    def summary(self) -> str:
        return (
            f"total: rounds={len(self.rounds)} "
            f"sent={sum(r.sent for r in self.rounds)} "
            f"unique={sum(r.unique for r in self.rounds)} "
            f"duplicates={sum(r.duplicates for r in self.rounds)} "
            f"requests={sum(r.requests for r in self.rounds)} "
            f"retries={sum(r.retries for r in self.rounds)} "
            f"verify_failures={self.verify_failures}"
        )


class Publisher:
    """Publishes rounds of generated events until `rounds` are done or stopped.

    Each round is sent either as single events (one object per request) or
    as batches of 1..`max_batch` events: chosen at random per round unless
    `mode` fixes it.
    """

    def __init__(
        self,
        client: AggregatorClient,
        generator: EventGenerator,
        *,
        events: int = 5000,
        duplicate_ratio: float = 0.25,
        interval: tuple[float, float] = (15.0, 30.0),
        rounds: int = 0,
        max_batch: int = 500,
        mode: str = "random",
        verify: bool = False,
        verify_timeout: float = 120.0,
        seed: int | None = None,
        progress: bool = False,
        out: Write = print,
        err: Write = print,
    ) -> None:
        self.client = client
        self.generator = generator
        self.events = events
        self.duplicate_ratio = duplicate_ratio
        self.interval = interval
        self.rounds = rounds
        self.max_batch = max_batch
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.verify = verify
        self.verify_timeout = verify_timeout
        self.progress = progress
        self.out = out
        self.err = err
        # Separate from the generator's so modes and batch sizes do not shift
        # the event ids a seed produces.
        self._rng = random.Random(None if seed is None else f"publisher-{seed}")

    def run(self, stop: threading.Event) -> RunResult:
        """Publish until `rounds` are done (0 = forever) or `stop` is set.

        Raises the client's Rejected or GaveUp after printing the summaries.
        """
        result = RunResult()
        try:
            while not stop.is_set():
                round_, report = self._plan_round(len(result.rounds) + 1)
                # Counted before it is played, so a round that raises still
                # shows in the total.
                result.rounds.append(report)
                self._play_round(round_, report, stop)
                if self.rounds and len(result.rounds) >= self.rounds:
                    break
                pause = self._rng.uniform(*self.interval)
                logger.info("Next round in %.1f s", pause)
                if stop.wait(pause):
                    break
        finally:
            self.out(result.summary())
        return result

    def _plan_round(self, number: int) -> tuple[Round, RoundReport]:
        mode = self._rng.choice(("single", "batch")) if self.mode == "random" else self.mode
        round_ = self.generator.next_round(self.events, self.duplicate_ratio)
        return round_, RoundReport(number=number, mode=mode, planned=len(round_.events))

    def _play_round(self, round_: Round, report: RoundReport, stop: threading.Event) -> None:
        try:
            baseline = self._baseline(report, stop) if self.verify else None
            if baseline is not None or not self.verify:
                self._send(round_, report, stop)
            if baseline is not None:
                self._check(report, baseline, stop)
        finally:
            # Also when a request is rejected: show what got through first.
            self.out(report.summary())
        if report.verdict is not None and not report.verdict.ok:
            self.err(
                f"VERIFY FAILED in round {report.number}: {report.verdict.message}. Either the "
                "aggregator did not count this round exactly once, or something else published "
                "to it meanwhile, or this --seed had already been published to it."
            )

    def _baseline(self, report: RoundReport, stop: threading.Event) -> verify.Stats | None:
        try:
            baseline = verify.wait_for_idle(self.client, stop, self.verify_timeout)
        except TimeoutError as exc:
            report.verdict = verify.Verdict(False, f"aggregator never idle before the round: {exc}")
            return None
        if baseline is None:
            report.stopped = True
            report.verify_note = "skipped (stopped)"
        return baseline

    def _check(self, report: RoundReport, baseline: verify.Stats, stop: threading.Event) -> None:
        if report.stopped:
            report.verify_note = "skipped (stopped)"
            return
        try:
            after = verify.wait_until_processed(
                self.client, stop, self.verify_timeout, baseline=baseline, sent=report.sent
            )
        except TimeoutError as exc:
            report.verdict = verify.Verdict(False, f"round never fully processed: {exc}")
            return
        if after is None:
            report.stopped = True
            report.verify_note = "skipped (stopped)"
            return
        report.verdict = verify.check(
            baseline,
            after,
            unique=report.unique,
            duplicates=report.duplicates,
            resent=report.resent,
        )

    def _requests(self, round_: Round, mode: str):
        """Yield (body, duplicate flags): one event object, or a list of events."""
        events, flags = round_.events, round_.duplicate
        if mode == "single":
            for i in range(len(events)):
                yield events[i], flags[i : i + 1]
            return
        start = 0
        while start < len(events):
            size = self._rng.randint(1, self.max_batch)
            yield events[start : start + size], flags[start : start + size]
            start += size

    def _send(self, round_: Round, report: RoundReport, stop: threading.Event) -> None:
        started = time.monotonic()
        bar = tqdm(
            total=len(round_.events),
            desc=f"round {report.number}",
            unit="ev",
            disable=not self.progress,
            leave=False,
        )
        try:
            for body, flags in self._requests(round_, report.mode):
                # Checked between requests only: a request in flight is
                # always finished and counted.
                if stop.is_set():
                    report.stopped = True
                    break
                size = len(flags)
                try:
                    result = self.client.publish(body)
                except Interrupted as exc:
                    report.requests += 1
                    report.retries += exc.attempts - 1
                    report.unconfirmed += size
                    report.stopped = True
                    logger.warning(
                        "Stopped while retrying: %d events were not confirmed by the aggregator "
                        "(%d earlier attempts may have landed)",
                        size,
                        exc.maybe_landed,
                    )
                    break
                report.requests += 1
                report.retries += result.attempts - 1
                report.resent += size * result.maybe_landed
                if result.accepted is not None and result.accepted != size:
                    logger.warning("Aggregator accepted %s of %d events", result.accepted, size)
                duplicates = sum(flags)
                report.sent += size
                report.duplicates += duplicates
                report.unique += size - duplicates
                sent = [body] if isinstance(body, dict) else body
                self.generator.remember(e for e, dup in zip(sent, flags) if not dup)
                bar.update(size)
        finally:
            bar.close()
            report.seconds = time.monotonic() - started
