"""manage.py publish_events: options, rounds, --verify, signals, and a real aggregator end to end."""

import json
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import events as make_events
from tests.polling import wait_for
from tests.servers import PROJECT_DIR, service_env
from tests.stub_aggregator import Scripted, StubAggregator

SUMMARY = re.compile(
    r"round (?P<round>\d+): sent=(?P<sent>\d+) unique=(?P<unique>\d+) duplicates=(?P<duplicates>\d+) "
    r"requests=(?P<requests>\d+) retries=(?P<retries>\d+) seconds=[\d.]+ events/s=\d+ "
    r"mode=(?P<mode>\w+) resent=(?P<resent>\d+)"
)
QUICK = ["--interval", "0", "0"]


@pytest.fixture
def stub():
    with StubAggregator() as stub:
        yield stub


@dataclass
class Run:
    out: str
    err: str
    error: CommandError | None


def publish_events(*args: str, check: bool = True) -> Run:
    """Run the command in-process; with check=False a CommandError is returned with the output."""
    out, err = StringIO(), StringIO()
    try:
        call_command("publish_events", *args, stdout=out, stderr=err)
    except CommandError as exc:
        if check:
            raise
        return Run(out.getvalue(), err.getvalue(), exc)
    return Run(out.getvalue(), err.getvalue(), None)


def summaries(output):
    return [{k: (v if k == "mode" else int(v)) for k, v in m.groupdict().items()} for m in SUMMARY.finditer(output)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duplicate-ratio", "1"], "--duplicate-ratio must be >= 0 and < 1"),
        (["--duplicate-ratio", "-0.1"], "--duplicate-ratio must be >= 0 and < 1"),
        (["--events", "0"], "--events must be at least 1"),
        (["--interval", "30", "15"], "--interval needs 0 <= MIN <= MAX"),
        (["--interval", "-1", "5"], "--interval needs 0 <= MIN <= MAX"),
        (["--rounds", "-1"], "--rounds must be 0"),
        (["--topics", "0"], "--topics must be at least 1"),
        (["--max-batch", "0"], "--max-batch must be between 1 and 10000"),
        (["--max-batch", "10001"], "--max-batch must be between 1 and 10000"),
        (["--url", "127.0.0.1:8000"], "--url must start with http:// or https://"),
        (["--max-retries", "-1"], "--max-retries must not be negative"),
        (["--timeout", "0"], "--timeout and --verify-timeout must be positive"),
    ],
)
def test_it_rejects_bad_options(args, message):
    assert message in str(publish_events(*args, check=False).error)


def test_help_describes_every_option(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "publish_events", "--help"],
        cwd=PROJECT_DIR, env=service_env(f"sqlite:///{tmp_path / 'unused.sqlite3'}"),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for option in ["--url", "--api-key", "--events", "--duplicate-ratio", "--interval", "--rounds",
                   "--topics", "--max-batch", "--mode", "--seed", "--verify", "--max-retries"]:  # fmt: skip
        assert option in result.stdout
    assert "LOGGREGATOR_URL" in result.stdout


def test_a_round_prints_one_summary_line_with_its_counts(stub):
    out = publish_events("--url", stub.url, "--rounds", "1", "--events", "400", *QUICK).out
    [summary] = summaries(out)
    assert summary["sent"] == 400
    assert (summary["unique"], summary["duplicates"]) == (300, 100)
    assert summary["requests"] == len(stub.publishes)
    assert summary["retries"] == 0
    assert "total: rounds=1 sent=400 unique=300 duplicates=100" in out
    stats = stub.stats()
    assert (stats["unique_processed"], stats["duplicate_dropped"]) == (300, 100)


def test_the_url_and_api_key_default_to_the_environment(stub, monkeypatch):
    monkeypatch.setenv("LOGGREGATOR_URL", stub.url)
    monkeypatch.setenv("LOGGREGATOR_API_KEY", "from-env")
    publish_events("--rounds", "1", "--events", "10", *QUICK)
    assert stub.publishes
    assert {r.headers["Authorization"] for r in stub.publishes} == {"Bearer from-env"}


def test_single_mode_sends_one_event_object_per_request(stub):
    out = publish_events("--url", stub.url, "--rounds", "1", "--events", "50", "--mode", "single", *QUICK).out
    assert len(stub.publishes) == 50
    assert all(isinstance(json.loads(r.body), dict) for r in stub.publishes)
    assert summaries(out)[0]["requests"] == 50


def test_batch_mode_sends_arrays_of_at_most_max_batch_events(stub):
    publish_events(
        "--url", stub.url, "--rounds", "1", "--events", "500", "--mode", "batch", "--max-batch", "40", *QUICK
    )  # fmt: skip
    bodies = [json.loads(r.body) for r in stub.publishes]
    assert all(isinstance(body, list) and 1 <= len(body) <= 40 for body in bodies)
    assert sum(map(len, bodies)) == 500


def test_random_mode_mixes_single_and_batch_rounds(stub):
    out = publish_events("--url", stub.url, "--rounds", "12", "--events", "5", "--seed", "1", *QUICK).out
    assert {s["mode"] for s in summaries(out)} == {"single", "batch"}


def test_the_same_seed_publishes_the_same_events():
    def run():
        with StubAggregator() as stub:
            publish_events("--url", stub.url, "--rounds", "2", "--events", "100", "--seed", "7", *QUICK)
            return stub.published_events()

    first, second = run(), run()
    assert [e["event_id"] for e in first] == [e["event_id"] for e in second]


def test_without_a_seed_each_run_publishes_new_event_ids(stub):
    publish_events("--url", stub.url, "--rounds", "1", "--events", "100", "--duplicate-ratio", "0", *QUICK)
    publish_events("--url", stub.url, "--rounds", "1", "--events", "100", "--duplicate-ratio", "0", *QUICK)
    assert stub.stats()["unique_processed"] == 200


def test_verify_passes_against_an_exactly_once_aggregator(stub):
    run = publish_events("--url", stub.url, "--rounds", "3", "--events", "300", "--verify", *QUICK)
    assert run.error is None
    assert run.out.count("verify=ok (unique +225, duplicates +75)") == 3
    assert "VERIFY FAILED" not in run.err


def test_verify_fails_loudly_when_the_aggregator_keeps_duplicates(stub):
    stub.keeps_duplicates = True
    run = publish_events("--url", stub.url, "--rounds", "1", "--events", "100", "--verify", *QUICK, check=False)
    assert "--verify failed in 1 round" in str(run.error)
    assert "verify=FAILED" in run.out
    assert "VERIFY FAILED in round 1: unique_processed grew by 100, expected 75" in run.err


def test_verify_counts_a_retry_whose_first_attempt_landed_as_a_possible_duplicate(stub):
    stub.script.append(Scripted(500, commit=True))
    # Batch sizes are random up to --max-batch; with this seed the first is
    # 2895 events, so the whole round goes in one request.
    out = publish_events(
        "--url", stub.url, "--rounds", "1", "--events", "100", "--seed", "1",
        "--mode", "batch", "--max-batch", "10000", "--verify", *QUICK,
    ).out  # fmt: skip
    [summary] = summaries(out)
    assert (summary["retries"], summary["resent"], summary["duplicates"]) == (1, 100, 25)
    assert "verify=ok (unique +75, duplicates +125)" in out


def test_a_rejected_request_stops_the_run_after_printing_the_summary(stub):
    stub.script.extend([Scripted(202, commit=True), Scripted(400)])
    run = publish_events("--url", stub.url, "--rounds", "1", "--events", "10", "--mode", "single", *QUICK, check=False)
    assert "rejected a request, not retried: HTTP 400: scripted" in str(run.error)
    assert summaries(run.out)[0]["sent"] == 1
    assert "total: rounds=1 sent=1" in run.out


class CommandProcess:
    """publish_events in a child process, its output collected line by line as it comes."""

    def __init__(self, tmp_path, *args):
        env = service_env(f"sqlite:///{tmp_path / 'unused.sqlite3'}", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "publish_events", *args],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.append(line)

    def output(self) -> str:
        return "".join(self.stdout)

    def errors(self) -> str:
        return "".join(self.stderr)

    def wait(self) -> int:
        """Wait for the exit (a generous deadline turns a hang into a failure) and all output."""
        code = self.process.wait(120)
        for reader in self._readers:
            reader.join(120)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_round_finishes_the_request_in_flight_and_exits_0(stub, tmp_path, sig):
    arrived, release = threading.Event(), threading.Event()

    def hold_the_third_request(number):
        if number == 3:
            arrived.set()
            release.wait(120)

    stub.on_publish = hold_the_third_request
    args = ["--url", stub.url, "--events", "1000", "--mode", "batch", "--max-batch", "10"]
    with CommandProcess(tmp_path, *args) as command:
        try:
            wait_for(arrived.is_set, message="the third request to arrive")
            command.process.send_signal(sig)
            wait_for(lambda: "finishing the request in flight" in command.errors(), message="the signal to be handled")
        finally:
            release.set()
        assert command.wait() == 0, command.errors()

    sent = len(stub.published_events())
    assert len(stub.publishes) == 3
    [summary] = summaries(command.output())
    assert summary["sent"] == sent  # the held request was finished and counted
    assert f"stopped after {sent} of 1000 events" in command.output()
    assert "total: rounds=1" in command.output()


def test_a_signal_during_the_pause_between_rounds_exits_at_once(stub, tmp_path):
    with CommandProcess(tmp_path, "--url", stub.url, "--events", "20", "--interval", "3600", "3600") as command:
        wait_for(lambda: "round 1:" in command.output(), message="the first round")
        command.process.send_signal(signal.SIGTERM)
        assert command.wait() == 0, command.errors()  # well before the hour-long pause ends
    assert "total: rounds=1 sent=20" in command.output()


def test_one_verified_round_against_a_real_aggregator(live_aggregator):
    run = publish_events("--url", live_aggregator, "--rounds", "1", "--verify", "--events", "1000")
    assert run.error is None, run.err
    [summary] = summaries(run.out)
    assert (summary["sent"], summary["unique"], summary["duplicates"]) == (1000, 750, 250)
    assert "verify=ok (unique +750, duplicates +250)" in run.out
    assert "VERIFY FAILED" not in run.err


@pytest.mark.parametrize(("mode", "events"), [("batch", "5000"), ("single", "300")])
def test_verified_rounds_against_a_real_aggregator_that_already_holds_events(aggregator_server, mode, events):
    # Events already stored by someone else: --verify compares deltas, not totals.
    assert aggregator_server.publish(make_events(50)).status_code == 202
    aggregator_server.wait_until_processed(received=50)

    out = publish_events(
        "--url", aggregator_server.url, "--rounds", "3", "--verify", "--mode", mode, "--events", events, *QUICK
    ).out  # fmt: skip
    rounds = summaries(out)
    assert len(rounds) == 3
    assert out.count("verify=ok") == 3
    stats = aggregator_server.stats()
    assert stats["unique_processed"] == 50 + sum(r["unique"] for r in rounds)
    assert stats["duplicate_dropped"] == sum(r["duplicates"] for r in rounds)
