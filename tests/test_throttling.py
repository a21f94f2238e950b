"""Rate limits: off by default; when set, 429 + Retry-After per API key or per client address."""

import pytest
from django.core.cache import cache

from tests.factories import event
from tests.test_api_keys import api_keys, bearer


@pytest.fixture
def rates(settings):
    cache.clear()

    def _rates(publish=None, read=None):
        settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PUBLISH_RATE": publish, "READ_RATE": read}

    yield _rates
    cache.clear()


@pytest.mark.django_db
def test_there_is_no_limit_by_default(publish):
    for _ in range(30):
        assert publish(event()).status_code == 202


@pytest.mark.django_db
def test_over_the_publish_rate_a_client_gets_429_with_retry_after_and_nothing_is_accepted(publish, stats, rates):
    rates(publish="3/min")
    for _ in range(3):
        assert publish(event()).status_code == 202
    refused = publish(event())
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert stats()["received"] == 3
    # Another client address has its own allowance.
    assert publish(event(), REMOTE_ADDR="10.0.0.2").status_code == 202


@pytest.mark.django_db
def test_each_api_key_has_its_own_allowance(publish, rates):
    rates(publish="2/min")
    first, second = api_keys("create", "one"), api_keys("create", "two")
    for _ in range(2):
        assert publish(event(), **bearer(first)).status_code == 202
    assert publish(event(), **bearer(first)).status_code == 429
    assert publish(event(), **bearer(second)).status_code == 202


@pytest.mark.django_db
def test_reads_have_their_own_rate(api, publish, rates):
    rates(read="2/min")
    assert api.get("/stats").status_code == 200
    assert api.get("/events", {"topic": "a"}).status_code == 200
    assert api.get("/stats").status_code == 429
    assert publish(event()).status_code == 202
