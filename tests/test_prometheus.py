"""A real Prometheus scrapes gunicorn (2 workers) and a run_consumer: what it stores agrees with /stats."""

import uuid

import pytest
import requests

from tests.factories import events
from tests.polling import wait_for
from tests.prometheus_server import PROMETHEUS, PrometheusServer
from tests.servers import AggregatorServer, ConsumerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus package (apt-get install prometheus)"),
]


def test_prometheus_stores_values_that_agree_with_stats(tmp_path, service_database):
    metrics_dir = tmp_path / "metrics"
    server = AggregatorServer(
        tmp_path,
        database_url=service_database.url,
        workers=2,
        LOGGREGATOR_INPROCESS_CONSUMER="false",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    server.start()
    consumer = ConsumerProcess(server)  # the same environment: it writes its metrics beside the workers'
    prometheus = PrometheusServer(tmp_path, f"127.0.0.1:{server.port}")
    try:
        consumer.start()
        prometheus.start()
        published = events(400, topic="prom.a") + events(200, topic="prom.b")
        bodies = [published[i : i + 50] for i in range(0, len(published), 50)] + [published[:100]]
        for body in bodies:
            # A new connection per request, so both workers answer some.
            assert requests.post(f"{server.url}/publish", json=body, timeout=60).status_code == 202
        bad = {"topic": "prom.a", "event_id": str(uuid.uuid4()), "timestamp": "yesterday", "source": "s", "payload": {}}
        assert requests.post(f"{server.url}/publish", json=[bad], timeout=60).status_code == 400
        stats = server.wait_until_processed(received=700)
        assert (stats["unique_processed"], stats["duplicate_dropped"]) == (600, 100)

        expected = {
            "loggregator_events_received_total": stats["received"],
            "loggregator_events_stored_total": stats["unique_processed"],
            "loggregator_events_duplicates_dropped_total": stats["duplicate_dropped"],
            "loggregator_events_pruned_total": stats["pruned"],
            "loggregator_events_stored_now": stats["stored"],
            "loggregator_queue_events": stats["queued"],
            # Process-local metrics, summed over the two workers and the consumer's files:
            'sum(loggregator_http_responses_total{endpoint="publish",status="202"})': len(bodies),
            'sum(loggregator_publish_rejected_total{reason="invalid"})': 1,
            "sum(loggregator_publish_duration_seconds_count)": len(bodies) + 1,
            "sum(loggregator_consumer_batch_events_sum)": stats["received"],
        }

        def scraped():
            values = {expression: prometheus.query(expression) for expression in expected}
            return values if values == expected else None

        wait_for(scraped, message=f"Prometheus to store {expected}")
    finally:
        prometheus.stop()
        consumer.stop()
        server.stop()
