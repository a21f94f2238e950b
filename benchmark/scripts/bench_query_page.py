"""Time each stage of one GET /events page, in one thread, without HTTP.

    python benchmark/scripts/bench_query_page.py [--events N] [--repeat R] [--database-url URL]

Fills a fresh, migrated database (a temporary SQLite file unless
--database-url names a PostgreSQL database this may fill) with the query
workload's events (benchmark/query_workload.py, N of them, default 100,000)
and prints, for each of its first-page queries (limit 100), the median CPU
time of this thread per page of each stage: the SQL alone (execute and fetch
the rows), the rows as the view reads them (the statement built and run), the
response body (the items and their JSON encoding), and the whole request
through Django's test client (middleware, DRF, the view). CPU time rather
than wall-clock time, because on a shared machine it hardly depends on the
load; SQLite runs in this thread, a PostgreSQL server's own time is not
counted. A full page against a page of a few events says what each event on
a page costs.
"""

import argparse
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

LIMIT = 100


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    from benchmark.standalone import setup_django

    # As in production: no query log, no debug pages.
    scratch = setup_django(
        "query-page", args.database_url, DEBUG="false", SECRET_KEY="bench-query-page", ALLOWED_HOSTS="localhost"
    )
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from benchmark import query_workload
    from events import page_body
    from events.query import EventQuery

    call_command("migrate", verbosity=0)
    now = datetime.now(UTC)
    postgres = connection.vendor == "postgresql"
    connection.ensure_connection()
    query_workload.load(connection.connection, args.events, now=now, seed=12, postgres=postgres)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rare_start = now - timedelta(days=query_workload.RARE_DAY)
    rare_day = (rare_start.isoformat(), (rare_start + timedelta(days=1)).isoformat())
    client = Client(HTTP_HOST="localhost")
    print(f"{args.events:,} events stored; median CPU ms of {args.repeat} per page of at most {LIMIT}:")
    header = f"  {'query':<48} {'events':>6} {'sql':>7} {'read':>7} {'body':>7} {'request':>8}"
    print(header)
    for name, params, _ in query_workload.queries(rare_day):
        query = EventQuery.from_params(params)
        timings = defaultdict(list)
        for _ in range(args.repeat):
            statement = query.page_rows_statement(None, LIMIT + 1)
            started = time.thread_time()
            with connection.cursor() as cursor:
                cursor.execute(*statement)
                cursor.fetchall()
            timings["sql"].append(time.thread_time() - started)
            started = time.thread_time()
            rows = query.page_rows(None, LIMIT + 1)
            timings["read"].append(time.thread_time() - started)
            started = time.thread_time()
            page = {"topic": query.pattern.text, "filters": query.applied(), "next": None}
            page_body.render({**page, "events": page_body.items(rows[:LIMIT])})
            timings["body"].append(time.thread_time() - started)
            started = time.thread_time()
            response = client.get("/events", {**params, "limit": LIMIT})
            timings["request"].append(time.thread_time() - started)
            assert response.status_code == 200, response.content
        medians = {stage: statistics.median(seconds) * 1000 for stage, seconds in timings.items()}
        print(
            f"  {name:<48} {min(len(rows), LIMIT):>6} {medians['sql']:7.2f} {medians['read']:7.2f} "
            f"{medians['body']:7.2f} {medians['request']:8.2f}"
        )
    scratch.cleanup()


if __name__ == "__main__":
    main()
