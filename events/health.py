"""Health checks: GET /healthz (liveness) and GET /readyz (readiness).

/healthz touches nothing: the process answers, so it is alive. /readyz checks
what the service needs to do its job, in order, and names what fails:

- database: each database answers a query (on a SQLite file, the intake queue has one of its own);
- migrations: every migration of this code is applied;
- consumer: nothing queued has waited longer than LOGGREGATOR_READY_MAX_QUEUE_AGE
  (consumers take the oldest batch first, so an old batch means none progresses);
- backlog: the queue is under LOGGREGATOR_MAX_QUEUED_EVENTS (else /publish refuses).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Min
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from events import counters
from events.models import IntakeBatch

# Once this code's migrations are applied they stay applied: checked until true, then no more.
_migrated = False


class NotReady(Exception):
    """A readiness check failed; the message says why."""


def check_database() -> str:
    for database in connections.all():  # on a SQLite file, the intake queue's too (events.routers)
        with database.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    return "answers"


def check_migrations() -> str:
    global _migrated
    if not _migrated:
        for database in connections.all():  # on a SQLite file, the intake queue's too (events.routers)
            executor = MigrationExecutor(database)
            if pending := executor.migration_plan(executor.loader.graph.leaf_nodes()):
                raise NotReady(f"{len(pending)} migrations are not applied to {database.alias}: run manage.py migrate")
        _migrated = True
    return "applied"


def check_consumer() -> str:
    oldest = IntakeBatch.objects.aggregate(oldest=Min("accepted_at"))["oldest"]
    if oldest is None:
        return "nothing queued"
    waited = (timezone.now() - oldest).total_seconds()
    limit = settings.LOGGREGATOR["READY_MAX_QUEUE_AGE"]
    if waited > limit:
        raise NotReady(f"the oldest queued batch has waited {waited:.0f} s (limit {limit:g} s): no consumer progresses")
    return f"oldest queued batch {waited:.1f} s old"


def check_backlog() -> str:
    queued, limit = counters.queued_total(), settings.LOGGREGATOR["MAX_QUEUED_EVENTS"]
    if limit and queued >= limit:
        raise NotReady(f"{queued} events queued, at or over the limit of {limit}: /publish answers 503")
    return f"{queued} events queued"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "migrations": check_migrations,
    "consumer": check_consumer,
    "backlog": check_backlog,
}


@require_GET
def healthz(request):
    return JsonResponse({"status": "alive"})


@require_GET
def readyz(request):
    """200 when every check passes, else 503 naming the first that failed; later checks are skipped."""
    results, failing = {}, None
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except (NotReady, DatabaseError) as exc:
            results[name] = {"ok": False, "detail": str(exc)}
            failing = name
            break  # the later checks need what this one checks
    body = {"status": "not ready" if failing else "ready", "checks": results}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
