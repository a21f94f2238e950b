"""HTTP client for an aggregator's `/publish` and `/stats`, at least once.

`publish()` retries the same body until the aggregator accepts it: after a
connection error, a timeout, a 5xx or a 429. It waits with exponential backoff
and jitter, and never sooner than a `Retry-After` header asks. Any other 4xx
means the request itself is wrong; retrying cannot help, so it is raised.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec
import requests
from urllib3.exceptions import NewConnectionError

logger = logging.getLogger(__name__)

USER_AGENT = "loggregator-publisher/1"
# Refused by the aggregator before it did any work: nothing of the request landed.
SHED_STATUSES = frozenset({429, 503})
RETRYABLE_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(frozen=True)
class PublishResult:
    accepted: int | None
    attempts: int
    # Failed attempts that may still have reached the aggregator (a timeout
    # after it committed, a 500 from a proxy after the app answered...). Each
    # one may make the aggregator see every event of the request once more.
    maybe_landed: int


class PublishError(Exception):
    pass


class Rejected(PublishError):
    """A 4xx other than 429: the request is wrong and was not retried."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class GaveUp(PublishError):
    """Every allowed attempt failed; the request may or may not have landed."""

    def __init__(self, attempts: int, maybe_landed: int, problem: str) -> None:
        super().__init__(f"gave up after {attempts} attempts, last: {problem}")
        self.attempts = attempts
        self.maybe_landed = maybe_landed


class Interrupted(PublishError):
    """The stop event was set while waiting to retry; the request is unconfirmed."""

    def __init__(self, attempts: int, maybe_landed: int) -> None:
        super().__init__(f"stopped before retrying, after {attempts} attempts")
        self.attempts = attempts
        self.maybe_landed = maybe_landed


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    rng: random.Random,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Exponential with "equal jitter": half the step is fixed, half is random,
    so publishers that failed together do not retry together. A Retry-After
    from the server wins when it asks for longer.
    """
    step = min(cap, base * 2 ** (attempt - 1))
    delay = step / 2 + rng.uniform(0, step / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def may_have_landed(exc: Exception) -> bool:
    """False only when the request certainly never reached the aggregator."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError) and exc.args:  # noqa: SIM102 (one test per condition reads better)
        if isinstance(getattr(exc.args[0], "reason", None), NewConnectionError):
            return False
    return True


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason or ""
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:500]


class AggregatorClient:
    """One keep-alive `requests.Session` to one aggregator.

    `stop` interrupts waits between attempts, never a request in flight:
    a request that was sent is always read to the end.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.stop = stop if stop is not None else threading.Event()
        self._rng = rng or random.Random()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AggregatorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def publish(self, events: list[dict] | dict | bytes) -> PublishResult:
        """POST one event or a list of events until the aggregator accepts them.

        Raises Rejected, GaveUp (only with `max_retries`) or Interrupted.
        """
        body = events if isinstance(events, bytes) else msgspec.json.encode(events)
        url = f"{self.base_url}/publish"
        attempts = 0
        maybe_landed = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = self.session.post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except RETRYABLE_EXCEPTIONS as exc:
                problem = f"{type(exc).__name__}: {exc}"
                maybe_landed += may_have_landed(exc)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return PublishResult(
                        accepted=self._accepted(response),
                        attempts=attempts,
                        maybe_landed=maybe_landed,
                    )
                if status < 500 and status != 429:
                    raise Rejected(status, _detail(response))
                problem = f"HTTP {status}: {_detail(response)}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                maybe_landed += status not in SHED_STATUSES

            if self.max_retries is not None and attempts > self.max_retries:
                raise GaveUp(attempts, maybe_landed, problem)
            delay = backoff_delay(attempts, retry_after, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)
            logger.warning(
                "Publish attempt %d to %s failed (%s); retrying in %.2f s",
                attempts,
                url,
                problem,
                delay,
            )
            if self.stop.wait(delay):
                raise Interrupted(attempts, maybe_landed)

    def stats(self) -> dict[str, Any]:
        """GET /stats once; raises requests exceptions on any failure."""
        response = self.session.get(f"{self.base_url}/stats", timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    @staticmethod
    def _accepted(response: requests.Response) -> int | None:
        try:
            return int(response.json()["accepted"])
        except (ValueError, KeyError, TypeError):
            return None
