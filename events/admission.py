"""Who may publish now: the API key, the rate limit and the backlog, checked before the body is read.

The same checks as DRF's authentication, permission and throttle classes
(events.auth), in the order DRF runs them, without DRF's request cycle: any
publish view calls admit_publisher() first, whether DRF serves it or not.
"""

from __future__ import annotations

from rest_framework import exceptions

from events.auth import ApiKeyAuthentication, PublishKeyRequired, PublishRateThrottle
from events.backpressure import refuse_when_backlogged


def admit_publisher(request, view=None) -> None:
    """Raise 401, 403, 429 or 503 (as APIExceptions) unless `request` may publish now.

    Sets `request.auth` to the request's ApiKey, or None.
    """
    authenticated = ApiKeyAuthentication().authenticate(request)  # 401 for an unknown key
    request.auth = authenticated[1] if authenticated else None
    PublishKeyRequired().has_permission(request, view)  # 401 without a key while keys exist, 403 without the scope
    throttle = PublishRateThrottle()
    if not throttle.allow_request(request, view):
        raise exceptions.Throttled(throttle.wait())
    refuse_when_backlogged()
