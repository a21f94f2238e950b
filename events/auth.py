"""Optional API keys for the API, and the rate limits.

- /publish needs a key with the `publish` scope as soon as one active key
  exists; with none (the local demo) it is open.
- /events and /stats need a key with the `read` scope when
  LOGGREGATOR_PROTECT_READS is on, whether or not keys exist. A browser
  session may read instead (the explorer's fetches and EventSource send no
  header): a staff user's, or one a read key was entered in
  (remember_read_key()).
- Rate limits (LOGGREGATOR_PUBLISH_RATE, LOGGREGATOR_READ_RATE) count requests
  per key, or per client address without one; off by default.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from django.conf import settings
from django.contrib import auth
from rest_framework import authentication, exceptions, permissions, throttling

from events.models import ApiKey

KEY_PREFIX = "lgr_"
# How long a process trusts its answer to "does any active key exist?": a new
# first key is enforced within this many seconds, without a query per request.
KEYS_CONFIGURED_TTL = 5.0
_keys_configured: tuple[float, bool] = (float("-inf"), False)
# The session entry holding the read key a browser user entered (its primary key, never the secret).
SESSION_READ_KEY = "loggregator_read_key"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_configured() -> bool:
    global _keys_configured
    checked_at, configured = _keys_configured
    now = time.monotonic()
    if now - checked_at > KEYS_CONFIGURED_TTL:
        configured = ApiKey.objects.filter(revoked_at__isnull=True).exists()
        _keys_configured = (now, configured)
    return configured


def keys_known_absent() -> bool:
    """True while this process's fresh answer is that no active key exists; never queries."""
    checked_at, configured = _keys_configured
    return not configured and time.monotonic() - checked_at <= KEYS_CONFIGURED_TTL


def forget_keys_configured() -> None:
    """Drop the cached answer (after keys change in this process, and in tests)."""
    global _keys_configured
    _keys_configured = (float("-inf"), False)


def key_required(view) -> bool:
    """Whether `view` refuses a request without an API key right now (it may change as keys are created)."""
    return any(
        isinstance(permission, _ScopedKeyRequired) and permission.required() for permission in view.get_permissions()
    )


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`: request.auth becomes the ApiKey; request.user stays None."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        api_key = ApiKey.objects.filter(key_hash=hash_key(key), revoked_at__isnull=True).first()
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return (None, api_key)

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403.
        return 'Bearer realm="loggregator"'


class _ScopedKeyRequired(permissions.BasePermission):
    """A key with `scope` when required() says keys are required; subclasses say when."""

    scope = ""

    def required(self) -> bool:
        return True

    def has_permission(self, request, view):
        api_key = request.auth
        if api_key is None:
            if not self.required():
                return True
            raise exceptions.NotAuthenticated(f"An API key with the `{self.scope}` scope is required.")
        if not api_key.allows(self.scope):
            raise exceptions.PermissionDenied(f"This API key lacks the `{self.scope}` scope.")
        return True


class PublishKeyRequired(_ScopedKeyRequired):
    scope = ApiKey.PUBLISH

    def required(self) -> bool:
        return keys_configured()


class ReadKeyRequired(_ScopedKeyRequired):
    scope = ApiKey.READ

    def required(self) -> bool:
        return settings.LOGGREGATOR["PROTECT_READS"]

    def has_permission(self, request, view):
        # A browser session may stand in for the header (the Django request's user, not DRF's).
        if request.auth is None and self.required() and session_may_read(request._request):
            return True
        return super().has_permission(request, view)


def remember_read_key(session, key: str) -> bool:
    """Let this browser session read with `key`, if it is an active key with the `read` scope."""
    api_key = ApiKey.objects.filter(key_hash=hash_key(key.strip()), revoked_at__isnull=True).first()
    if api_key is None or not api_key.allows(ApiKey.READ):
        return False
    session[SESSION_READ_KEY] = api_key.pk
    return True


def forget_read_key(session) -> None:
    session.pop(SESSION_READ_KEY, None)


def session_may_read(request) -> bool:
    """A staff login, or a read key entered in this session and still active (a revocation applies at once)."""
    if not hasattr(request, "session"):
        return False
    # From the session itself: DRF replaces request.user with its own (None here) before permissions run.
    user = auth.get_user(request)
    if user.is_active and user.is_staff:
        return True
    key_pk = request.session.get(SESSION_READ_KEY)
    if key_pk is None:
        return False
    api_key = ApiKey.objects.filter(pk=key_pk, revoked_at__isnull=True).first()
    return api_key is not None and api_key.allows(ApiKey.READ)


class MetricsKeyRequired(_ScopedKeyRequired):
    scope = ApiKey.READ

    def required(self) -> bool:
        return settings.LOGGREGATOR["PROTECT_METRICS"]


class _RateThrottle(throttling.SimpleRateThrottle):
    """Per API key, or per client address (REMOTE_ADDR; see NUM_PROXIES) without one.

    The counts live in Django's cache: the default local-memory cache counts
    per process, so with N gunicorn workers a client may get up to N times
    the rate. A shared cache (CACHES) makes the limit global.
    """

    setting = ""

    def get_rate(self):
        return settings.LOGGREGATOR[self.setting]

    def get_cache_key(self, request, view):
        ident = f"key-{request.auth.pk}" if request.auth is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PublishRateThrottle(_RateThrottle):
    scope = "publish"
    setting = "PUBLISH_RATE"


class ReadRateThrottle(_RateThrottle):
    scope = "read"
    setting = "READ_RATE"
