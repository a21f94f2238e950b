"""The real OpenTelemetry Python SDK exports Python `logging` records to a real server, retries included.

logging -> opentelemetry-instrumentation-logging's LoggingHandler -> the SDK's
LoggerProvider and BatchLogRecordProcessor -> OTLPLogExporter (OTLP/HTTP
protobuf) -> gunicorn.
"""

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.lossy_proxy import LossyProxy
from tests.polling import wait_for
from tests.servers import AggregatorServer, ConsumerProcess

RESOURCE = {"service.name": "checkout-api", "service.instance.id": "checkout-7"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Generous: a deadline only turns a hang into a failure.
FLUSH_MILLIS = 120_000


@pytest.fixture
def otel_logger():
    """A `logging` logger whose records an OTel SDK pipeline exports to the given base URL."""
    providers, loggers = [], []

    def _logger(url: str) -> tuple[logging.Logger, LoggerProvider]:
        provider = LoggerProvider(resource=Resource.create(RESOURCE))
        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(f"{url}/v1/logs", timeout=120)))
        logger = logging.getLogger(f"tests.otlp.{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(LoggingHandler(logger_provider=provider, log_code_attributes=True))
        providers.append(provider)
        loggers.append(logger)
        return logger, provider

    yield _logger
    for logger in loggers:
        logger.handlers.clear()
    for provider in providers:
        provider.shutdown()


def stored_events(server: AggregatorServer, topic: str = "checkout_api") -> list[dict]:
    response = server.session.get(f"{server.url}/events", params={"topic": topic}, timeout=30)
    response.raise_for_status()
    return response.json()["events"]


def test_python_logging_records_arrive_with_the_otlp_mapping(aggregator_server, otel_logger):
    logger, provider = otel_logger(aggregator_server.url)
    tracer = TracerProvider().get_tracer("tests")

    with tracer.start_as_current_span("pay") as span:
        logger.warning("payment %s declined", "p-1", extra={"order_id": 42})
    logger.info("done", extra={"loggregator.topic": "checkout.audit"})
    assert provider.force_flush(FLUSH_MILLIS)

    aggregator_server.wait_until_processed(received=2)
    (declined,) = stored_events(aggregator_server)
    (done,) = stored_events(aggregator_server, "checkout.audit")
    assert declined["source"] == done["source"] == "checkout-7"
    payload = declined["payload"]
    assert payload["body"] == "payment p-1 declined"
    assert (payload["severity_text"], payload["severity_number"]) == ("WARN", 13)
    assert payload["attributes"]["order_id"] == 42
    assert payload["attributes"]["code.function.name"] == "test_python_logging_records_arrive_with_the_otlp_mapping"
    assert payload["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert payload["span_id"] == format(span.get_span_context().span_id, "016x")
    assert payload["resource"]["attributes"]["service.name"] == "checkout-api"
    assert payload["resource"]["attributes"]["telemetry.sdk.language"] == "python"
    assert payload["scope"]["name"] == logger.name
    stored_at = datetime.fromisoformat(declined["timestamp"].replace("Z", "+00:00"))
    assert stored_at == EPOCH + timedelta(microseconds=payload["time_unix_nano"] // 1000)
    assert done["payload"]["body"] == "done"


@pytest.mark.slow
def test_an_export_whose_answer_is_lost_after_the_commit_is_retried_and_stored_once(aggregator_server, otel_logger):
    with LossyProxy(aggregator_server.url, answers_to_lose=1) as proxy:
        logger, provider = otel_logger(proxy.url)
        for n in range(3):
            logger.info("line %d", n)
        assert provider.force_flush(FLUSH_MILLIS)

    assert proxy.statuses == [200, 200]  # committed, answer lost; then the retry
    stats = aggregator_server.wait_until_processed(received=6)
    assert (stats["unique_processed"], stats["duplicate_dropped"]) == (3, 3)
    assert sorted(event["payload"]["body"] for event in stored_events(aggregator_server)) == [
        "line 0",
        "line 1",
        "line 2",
    ]


@pytest.mark.slow
def test_an_export_refused_with_503_under_backpressure_is_retried_after_retry_after(
    tmp_path, service_database, otel_logger
):
    server = AggregatorServer(
        tmp_path,
        database_url=service_database.url,
        LOGGREGATOR_INPROCESS_CONSUMER="false",
        LOGGREGATOR_MAX_QUEUED_EVENTS="1",
        LOGGREGATOR_BACKPRESSURE_RETRY_AFTER="2",
    )
    server.start()
    try:
        backlog = {"topic": "backlog", "event_id": str(uuid.uuid4()), "timestamp": "2026-01-01T00:00:00Z"}
        assert server.publish({**backlog, "source": "tests", "payload": {}}).status_code == 202
        with LossyProxy(server.url) as proxy:
            logger, provider = otel_logger(proxy.url)
            for n in range(3):
                logger.info("line %d", n)
            flushed = []
            flusher = threading.Thread(target=lambda: flushed.append(provider.force_flush(FLUSH_MILLIS)))
            flusher.start()
            wait_for(lambda: 503 in proxy.statuses, message="the export to be refused with 503")
            drain(server)  # the backlog clears; the exporter's retry after Retry-After is accepted
            flusher.join()
        assert flushed == [True]
        assert proxy.statuses[0] == 503 and proxy.statuses[-1] == 200
        drain(server)
        stats = server.stats()
        assert (stats["received"], stats["unique_processed"], stats["duplicate_dropped"]) == (4, 4, 0)
        assert len(stored_events(server)) == 3
    finally:
        server.stop()


def drain(server: AggregatorServer) -> None:
    consumer = ConsumerProcess(server, "--once")
    consumer.start()
    assert consumer.process.wait(300) == 0, consumer.log()
