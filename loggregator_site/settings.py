"""Loggregator settings.

Everything that differs between deployments comes from the environment, with
defaults that work on a laptop (SQLite under data/, DEBUG on). The README has a
table of every variable.
"""

import copy
import math
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from loggregator_site import secret_key
from loggregator_site.env import (
    env_bool,
    env_duration,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_retention,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY and (_secret_key_file := env_str("SECRET_KEY_FILE", "")):
    SECRET_KEY = secret_key.read_or_create(Path(_secret_key_file))
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

# --- HTTPS (`manage.py check --deploy`; README-reliability.md) --------------
# Cookies (the admin's session and CSRF token) only over HTTPS unless DEBUG.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# TLS ends at the reverse proxy in front of gunicorn, which redirects plain
# HTTP and sends HSTS; publishers and healthchecks on the private network
# speak plain HTTP to gunicorn, so both stay off unless asked for.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The header the proxy sets on HTTPS requests, e.g. X-Forwarded-Proto: only
# set it when the proxy always overwrites that header.
if _proxy_ssl_header := env_str("SECURE_PROXY_SSL_HEADER", ""):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # runserver serves static files through WhiteNoise too, as gunicorn does.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and Redoc as static files, so /docs and /redoc work without internet access.
    "drf_spectacular_sidecar",
    "events",
    "otlp",
    "explorer",
    "publisher",
    "benchmark",
]

MIDDLEWARE = [
    # First, so it counts and times every response, errors included.
    "events.metrics_middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files in every mode (runserver, gunicorn, Docker), before anything that needs a session.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "loggregator_site.urls"
WSGI_APPLICATION = "loggregator_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Site-wide overrides of library templates (the API docs' pages).
        "DIRS": [BASE_DIR / "loggregator_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# The database is both the event store and the durable intake queue (on a
# SQLite file, the queue has a file of its own: events.routers).
DEFAULT_DATABASE_URL = f"sqlite:///{BASE_DIR / 'data' / 'loggregator.sqlite3'}"
try:
    _database = dj_database_url.parse(
        env_str("DATABASE_URL", DEFAULT_DATABASE_URL),
        conn_max_age=600,
        conn_health_checks=True,
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from None

if _database["ENGINE"] == "django.db.backends.sqlite3":
    # Never let "database is locked" reach a client: WAL lets readers run beside
    # the one writer, IMMEDIATE takes the write lock at BEGIN (so a transaction
    # never fails half-way on lock upgrade) and the busy timeout queues writers.
    # synchronous=NORMAL keeps every commit across a process crash; only a power
    # loss or OS crash may roll back the last commits (see the README).
    # Consumers checkpoint the WAL themselves (events.db), so a commit only
    # does it past a larger threshold (10,000 pages, ~40 MB) than the default.
    _sqlite_options = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_float("SQLITE_BUSY_TIMEOUT", 30.0),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;",
    }
    _database["OPTIONS"] = {
        **_sqlite_options,
        "init_command": f"{_sqlite_options['init_command']} PRAGMA wal_autocheckpoint=10000",
    }
    if _database["NAME"] != ":memory:":
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": _database}
if _database["ENGINE"] == "django.db.backends.sqlite3" and _database["NAME"] != ":memory:":
    # The intake queue in a file of its own beside the store (events.routers):
    # data/loggregator.sqlite3 -> data/loggregator-intake.sqlite3. Its rows are
    # small and short-lived, so SQLite's own checkpoints (every 1000 pages) suit it.
    _store_file = Path(_database["NAME"])
    DATABASES["intake"] = {
        **copy.deepcopy(_database),
        "NAME": str(_store_file.with_name(f"{_store_file.stem}-intake{_store_file.suffix}")),
        "OPTIONS": _sqlite_options,
    }
DATABASE_ROUTERS = ["events.routers.IntakeRouter"]
ON_POSTGRESQL = _database["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------
# WhiteNoise serves them from STATIC_ROOT: compressed (gzip), with hashed names
# cached for a year. `manage.py collectstatic` fills it: the Docker image does
# at build, a gunicorn deployment before it starts (README, Running in
# production). With DEBUG on, WhiteNoise finds them in the apps instead.
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "events.exceptions.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "events.negotiation.FirstRendererNegotiation",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Loggregator API",
    "DESCRIPTION": (
        "Collects log events published at least once, stores each (topic, event_id) exactly once, "
        "and serves them back by topic."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /docs and /redoc load nothing from outside this host (see loggregator_site/templates for Redoc's fonts).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would send the schema to validator.swagger.io for its badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "events.openapi.require_publish_body",
    ],
}

# --- Loggregator ------------------------------------------------------------
LOGGREGATOR = {
    # Largest accepted request body, in bytes (413 above it).
    "MAX_BODY_BYTES": env_int("LOGGREGATOR_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1),
    # Most events one POST /publish may carry.
    "MAX_BATCH_EVENTS": env_int("LOGGREGATOR_MAX_BATCH_EVENTS", 10_000, minimum=1),
    # Run a consumer thread inside each web process (off when dedicated
    # `run_consumer` processes drain the queue).
    "INPROCESS_CONSUMER": env_bool("LOGGREGATOR_INPROCESS_CONSUMER", True),
    # That consumer runs as a child process of the web process (its own
    # interpreter, so it never waits on the publishes' GIL), or as a thread.
    "CONSUMER_CHILD_PROCESS": env_bool("LOGGREGATOR_CONSUMER_CHILD_PROCESS", True),
    # Most events one consumer transaction takes from the queue. On SQLite
    # publishes never wait for a consumer transaction (the queue has a file of
    # its own), and a larger one writes the index pages its events share once:
    # batched loads were stored ~5-8% faster with 20,000 than with 5,000 (README).
    "CONSUMER_BATCH_EVENTS": env_int(
        "LOGGREGATOR_CONSUMER_BATCH_EVENTS", 5_000 if ON_POSTGRESQL else 20_000, minimum=1
    ),
    # SQLite page cache of each consumer's connection, in MiB. Its inserts
    # touch index pages all over a growing table (random event ids); the
    # default 2 MiB cache sends most of them back to the operating system.
    "CONSUMER_CACHE_MIB": env_int("LOGGREGATOR_CONSUMER_CACHE_MIB", 32, minimum=1),
    # How often an idle consumer looks for work another process queued, seconds.
    # On PostgreSQL a notification wakes it at once (events.wakeup): the poll
    # is only the fallback, so it can be slow.
    "CONSUMER_POLL_INTERVAL": env_float(
        "LOGGREGATOR_CONSUMER_POLL_INTERVAL", 1.0 if ON_POSTGRESQL else 0.05, minimum=0.001
    ),
    # After a batch that emptied the queue, seconds to let more events gather
    # before the next consumer transaction (more events per transaction).
    "CONSUMER_LINGER": env_float("LOGGREGATOR_CONSUMER_LINGER", 0.02),
    # Backpressure: above this many accepted-but-unprocessed events, /publish
    # answers 503 with Retry-After instead of accepting more (0: no limit).
    "MAX_QUEUED_EVENTS": env_int("LOGGREGATOR_MAX_QUEUED_EVENTS", 1_000_000),
    # The Retry-After of those 503s, in seconds.
    "BACKPRESSURE_RETRY_AFTER": env_int("LOGGREGATOR_BACKPRESSURE_RETRY_AFTER", 5, minimum=1),
    # /events and /stats need an API key with the `read` scope (/publish needs
    # one with `publish` as soon as any key exists; see events.auth).
    "PROTECT_READS": env_bool("LOGGREGATOR_PROTECT_READS", False),
    # Requests allowed per API key, or per client address without one, e.g.
    # "100/s" or "6000/min"; unset means no limit. 429 + Retry-After above it.
    "PUBLISH_RATE": env_rate("LOGGREGATOR_PUBLISH_RATE"),
    "READ_RATE": env_rate("LOGGREGATOR_READ_RATE"),
    # The live tail (GET /events/stream): seconds between `: keep-alive`
    # comments on a quiet stream, so proxies keep the connection open.
    "STREAM_HEARTBEAT": env_float("LOGGREGATOR_STREAM_HEARTBEAT", 15.0, minimum=0.01),
    # A stream whose backlog of stored events to read grows by more than this
    # (the client reads slower than events arrive) ends with `event: overflow`.
    "STREAM_MAX_LAG": env_int("LOGGREGATOR_STREAM_MAX_LAG", 100_000, minimum=1),
    # Open streams per server process; beyond it 503 + Retry-After.
    "STREAM_MAX_PER_PROCESS": env_int("LOGGREGATOR_STREAM_MAX_PER_PROCESS", 1000, minimum=1),
    "STREAM_RETRY_AFTER": env_int("LOGGREGATOR_STREAM_RETRY_AFTER", 5, minimum=1),
    # How often each process looks for newly stored events while it has
    # streams open; on PostgreSQL a notification wakes it at once and the
    # look is only the fallback.
    "STREAM_POLL_INTERVAL": env_float("LOGGREGATOR_STREAM_POLL_INTERVAL", 1.0 if ON_POSTGRESQL else 0.1, minimum=0.001),
    # Newly stored events each process keeps for its streams to read.
    "STREAM_BUFFER_EVENTS": env_int("LOGGREGATOR_STREAM_BUFFER_EVENTS", 20_000, minimum=1),
    # Counter rows per topic; writers spread over them so no single row is hot.
    "COUNTER_SHARDS": env_int("LOGGREGATOR_COUNTER_SHARDS", 4, minimum=1),
    # POST /v1/logs (OTLP): largest body, compressed or decompressed (413
    # above; the OTLP specification recommends at least 20 MiB).
    "OTLP_MAX_BODY_BYTES": env_int("LOGGREGATOR_OTLP_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1),
    # The log-record or resource attribute that names a record's topic.
    "OTLP_TOPIC_ATTRIBUTE": env_str("LOGGREGATOR_OTLP_TOPIC_ATTRIBUTE", "loggregator.topic"),
    # --- Operations (events.retention, events.pruner, events.health, events.metrics)
    # How long events are kept, by timestamp: (default, ((topic pattern, seconds), ...)), None = forever.
    "RETENTION": env_retention("LOGGREGATOR_RETENTION"),
    # How long after its retention a copy of a pruned event is still a duplicate (None: as long as the retention).
    "DEDUP_HORIZON": env_duration("LOGGREGATOR_DEDUP_HORIZON", forever=math.inf),
    # Each web process starts a prune this often, in seconds, spread over half of it (0: only `manage.py prune`).
    "PRUNE_INTERVAL": env_float("LOGGREGATOR_PRUNE_INTERVAL", 60.0),
    # Seconds of write lock a pruning transaction aims at: it deletes as many events as fit, so
    # publishes never wait long behind it, and no fewer, since bigger chunks delete each event for less.
    "PRUNE_CHUNK_SECONDS": env_float("LOGGREGATOR_PRUNE_CHUNK_SECONDS", 0.05, minimum=0.001),
    # The most events one pruning transaction deletes.
    "PRUNE_CHUNK_EVENTS": env_int("LOGGREGATOR_PRUNE_CHUNK_EVENTS", 5000, minimum=1),
    # /readyz fails when the oldest queued batch has waited longer than this (seconds): no consumer progresses.
    "READY_MAX_QUEUE_AGE": env_float("LOGGREGATOR_READY_MAX_QUEUE_AGE", 60.0, minimum=0.001),
    # /metrics needs an API key with the `read` scope.
    "PROTECT_METRICS": env_bool("LOGGREGATOR_PROTECT_METRICS", False),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"level": env_str("DJANGO_LOG_LEVEL", "WARNING"), "propagate": True}},
}
