"""GET /events as a query: a topic pattern, a time window, filters and an order, read page by page.

One EventQuery answers three ways that always agree: page() reads it from the
database, matches() checks one event in Python (the live tail filters each
newly stored batch with it), applied() describes it.

How a page is read, so that it costs the same at a million events as at ten
thousand (every page is a keyset page, see events.pagination):
- an exact topic reads its (topic, timestamp, id) index;
- `>` with no topic filter reads the (timestamp, id) timeline index;
- a pattern becomes the known topics it matches (from the Stats counters: a
  few rows per topic, never a scan of the events); when they are a few rare
  topics each is read from its own index and the pages are merged (one
  UNION ALL statement), otherwise the timeline index is read and filtered
  by topic.
`q=` and `payload.` filters are checked on the rows those index ranges
return: their scan is bounded by the topic and the time window.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import NotSupportedError, connection, transaction
from django.db.models import BooleanField, F, Func, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from events import counters, pagination
from events.models import Event
from events.pagination import decode_cursor, encode_cursor  # noqa: F401 (cursors of this module's pages)
from events.topic_patterns import InvalidTopicPattern, TopicPattern, parse_pattern
from events.validation import SOURCE_MAX_LENGTH

ORDERS = ("asc", "desc")
PAYLOAD_PREFIX = "payload."
# The parameters from_params() reads, besides the payload.<path> family.
PARAMETERS = ("topic", "since", "until", "source", "q", "order")
_DURATION = re.compile(r"(\d{1,9})([smhd])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
# A key of a payload path: anything but the dot that separates keys, quotes,
# backslashes and control characters (SQLite's JSON path quotes each key).
_PAYLOAD_KEY = re.compile(r'[^."\\\x00-\x1f]{1,255}')
MAX_PAYLOAD_PATH_KEYS = 16
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
# A pattern's topics are read one index each and merged while they are rare
# enough: len(topics) * (their share of all events) < 1, i.e. fewer rows
# than a filtered walk of the timeline would read.
MAX_MERGED_TOPICS = 100
# What page_rows() reads of each event.
ROW_COLUMNS = ("id", "topic", "event_id", "timestamp", "source", "payload_text")


@dataclass(frozen=True)
class PayloadEquals:
    """`payload.<key>[.<key>…]=<value>`: the JSON value at the path equals value.

    Compared as a number when both are numbers, as text otherwise: a string
    equals its text, true/false/null equal those words.
    """

    path: tuple[str, ...]
    value: str

    @property
    def number(self) -> int | float | None:
        if not _JSON_NUMBER.fullmatch(self.value):
            return None
        if re.fullmatch(r"-?\d+", self.value) and -(2**63) <= int(self.value) < 2**63:
            return int(self.value)
        number = float(self.value)
        return number if math.isfinite(number) else None

    @property
    def param(self) -> str:
        return PAYLOAD_PREFIX + ".".join(self.path)

    def matches(self, payload) -> bool:
        value = payload
        for key in self.path:
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        if isinstance(value, str):
            return value == self.value
        if isinstance(value, bool):
            return self.value == ("true" if value else "false")
        if value is None:
            return self.value == "null"
        if isinstance(value, int | float):
            return self.number is not None and value == self.number
        return False  # an object or an array

    def expression(self) -> PayloadValueEquals:
        return PayloadValueEquals(self)


class PayloadValueEquals(Func):
    """SQL for PayloadEquals, per database: SQLite's JSON functions or PostgreSQL's jsonb operators."""

    output_field = BooleanField()

    def __init__(self, condition: PayloadEquals):
        super().__init__(F("payload"))
        self.condition = condition

    def as_sql(self, compiler, connection, **extra):
        # SQLite and PostgreSQL are the supported databases (as_sqlite, as_postgresql below).
        raise NotSupportedError(f"payload filters are not written for {connection.vendor}")

    def as_sqlite(self, compiler, connection, **extra):
        payload, payload_params = compiler.compile(self.source_expressions[0])
        path = "$" + "".join(f'."{key}"' for key in self.condition.path)
        kind = f"json_type({payload}, %s)"
        alternatives = [(f"({kind} = 'text' AND json_extract({payload}, %s) = %s)", [path, path, self.condition.value])]
        if self.condition.number is not None:
            alternatives.append(
                (
                    f"({kind} IN ('integer', 'real') AND json_extract({payload}, %s) = %s)",
                    [path, path, self.condition.number],
                )
            )
        if self.condition.value in ("true", "false", "null"):
            alternatives.append((f"{kind} = %s", [path, self.condition.value]))
        return _any_of(alternatives, payload_params)

    def as_postgresql(self, compiler, connection, **extra):
        payload, payload_params = compiler.compile(self.source_expressions[0])
        path = list(self.condition.path)
        # `->` with text keys only descends into objects (#> would index arrays with "0").
        value = "(" + payload + " -> %s" * len(path) + ")"
        kind = f"jsonb_typeof({value})"
        alternatives = [(f"({kind} = 'string' AND {value} #>> '{{}}' = %s)", [*path, *path, self.condition.value])]
        if self.condition.number is not None:
            alternatives.append(
                (
                    f"(CASE WHEN {kind} = 'number' THEN ({value} #>> '{{}}')::numeric = %s::numeric ELSE false END)",
                    [*path, *path, str(Decimal(self.condition.value))],
                )
            )
        if self.condition.value in ("true", "false"):
            alternatives.append(
                (f"({kind} = 'boolean' AND {value} #>> '{{}}' = %s)", [*path, *path, self.condition.value])
            )
        elif self.condition.value == "null":
            alternatives.append((f"{kind} = 'null'", path))
        return _any_of(alternatives, payload_params)


def _any_of(alternatives: list[tuple[str, list]], payload_params) -> tuple[str, list]:
    # Each alternative references the payload column, whose own params (none
    # for a column) would repeat with it.
    assert not payload_params
    sql = "(" + " OR ".join(sql for sql, _ in alternatives) + ")"
    return sql, [param for _, params in alternatives for param in params]


def with_payload_text(queryset: QuerySet) -> QuerySet:
    """Events with `payload_text`, the payload as the database stores it: what q= searches.

    matches() reads it when present, so that q= matches exactly as in SQL;
    without it, it searches a rendering of the decoded payload.
    """
    return queryset.annotate(payload_text=Cast("payload", TextField()))


@dataclass(frozen=True)
class EventQuery:
    pattern: TopicPattern
    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    text: str = ""
    payload: tuple[PayloadEquals, ...] = ()
    descending: bool = False

    @classmethod
    def from_params(cls, params, *, now: datetime | None = None) -> EventQuery:
        """The query GET /events parameters describe (a QueryDict or a dict).

        Relative instants (`15m`) count back from `now`. Raises
        ValidationError({"<param>": "what is wrong"}).
        """
        now = now or timezone.now()
        _refuse_nul(params)
        topic = _single(params, "topic")
        if not topic:
            raise ValidationError({"topic": "This query parameter is required: a topic or a topic pattern."})
        try:
            pattern = parse_pattern(topic)
        except InvalidTopicPattern as exc:
            raise ValidationError({"topic": str(exc)}) from None
        since = parse_instant("since", _single(params, "since"), now=now)
        until = parse_instant("until", _single(params, "until"), now=now)
        if since and until and until < since:
            raise ValidationError(
                {"until": f"The window ends ({until.isoformat()}) before it starts ({since.isoformat()})."}
            )
        sources = tuple(source for source in _multiple(params, "source") if source)
        if any(len(source) > SOURCE_MAX_LENGTH for source in sources):
            raise ValidationError({"source": f"A source has at most {SOURCE_MAX_LENGTH} characters."})
        order = _single(params, "order") or "asc"
        if order not in ORDERS:
            raise ValidationError(
                {"order": f"Must be `asc` (oldest first, the default) or `desc` (newest first), not {order!r}."}
            )
        return cls(
            pattern=pattern,
            since=since,
            until=until,
            sources=tuple(dict.fromkeys(sources)),
            text=_single(params, "q") or "",
            payload=tuple(_payload_conditions(params)),
            descending=order == "desc",
        )

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"

    def applied(self) -> dict:
        """The filters, as the response reports them (relative instants resolved)."""
        applied = {name: value for name, value in self.as_params().items() if not name.startswith(PAYLOAD_PREFIX)}
        if self.payload:
            applied["payload"] = {".".join(condition.path): condition.value for condition in self.payload}
        return applied

    def as_params(self) -> dict[str, str | list[str]]:
        """Return the GET /events parameters of this very query.

        Relative instants are made absolute, so that every page of a walk reads the same window.
        """
        params = {"topic": self.pattern.text, "order": self.order}
        if self.since:
            params["since"] = self.since.isoformat()
        if self.until:
            params["until"] = self.until.isoformat()
        if self.sources:
            params["source"] = list(self.sources)
        if self.text:
            params["q"] = self.text
        for condition in self.payload:
            params[condition.param] = condition.value
        return params

    def filter(self, queryset: QuerySet) -> QuerySet:
        """`queryset` (of Events) narrowed to this query's events, in no particular order."""
        return self._narrow(queryset).filter(self.pattern.sql_filter())

    def _filters(self) -> Q:
        """Every condition but the topic pattern."""
        conditions = Q()
        if self.since:
            conditions &= Q(timestamp__gte=self.since)
        if self.until:
            conditions &= Q(timestamp__lt=self.until)
        if self.sources:
            conditions &= Q(source__in=self.sources)
        if self.text:
            conditions &= Q(stored_payload_text__icontains=self.text) | Q(source__icontains=self.text)
        for condition in self.payload:
            conditions &= Q(condition.expression())
        return conditions

    def _narrow(self, queryset: QuerySet) -> QuerySet:
        """`queryset` with every condition but the topic pattern."""
        if self.text:
            queryset = queryset.alias(stored_payload_text=Cast("payload", TextField()))
        return queryset.filter(self._filters())

    def page(self, after: str | None, limit: int) -> tuple[list[Event], str | None]:
        """Up to `limit` events after the cursor `after`, in order, and the cursor of the last one."""
        querysets = self._page_querysets(_position(after), limit)
        with _index_order_only():
            if len(querysets) > 1:
                table = connection.ops.quote_name(Event._meta.db_table)
                events = list(Event.objects.raw(*self._merged_sql(querysets, limit, columns=f"{table}.*")))
            else:
                events = [event for queryset in querysets for event in queryset]
        return events, (pagination.encode_cursor(events[-1]) if events else None)

    def page_rows(self, after: str | None, limit: int) -> list[tuple]:
        """The events page() reads, as database rows of ROW_COLUMNS, for readers that need no Event objects.

        The values are as the database driver returns them (events.page_body
        turns them into a response): `payload_text` is the stored JSON text,
        not decoded.
        """
        statement = self.page_rows_statement(after, limit)
        if statement is None:
            return []
        with _index_order_only(), connection.cursor() as cursor:
            cursor.execute(*statement)
            return cursor.fetchall()

    def page_rows_statement(self, after: str | None, limit: int) -> tuple[str, list] | None:
        """The SQL and parameters page_rows() runs; None when no topic matches."""
        querysets = self._page_querysets(_position(after), limit)
        if not querysets:
            return None
        if len(querysets) > 1:
            return self._merged_sql(querysets, limit, columns=_row_columns_sql())
        return with_payload_text(querysets[0]).values_list(*ROW_COLUMNS).query.sql_with_params()

    def _page_querysets(self, position, limit) -> list[QuerySet]:
        """The page as one keyset queryset, several (one per topic) whose rows are merged, or none (no topic)."""
        base = self._narrow(Event.objects.all())
        if self.pattern.is_exact:
            return [self._keyset(base.filter(topic=self.pattern.text), position, limit)]
        if self.pattern.matches_every_topic:
            return [self._keyset(base, position, limit)]
        counts = counters.events_per_topic()
        topics = self.pattern.matching(counts)
        if not topics:
            return []
        if len(topics) == 1:
            return [self._keyset(base.filter(topic=topics[0]), position, limit)]
        stored = sum(counts.values())
        share = sum(counts[topic] for topic in topics) / stored if stored else 0
        if len(topics) <= MAX_MERGED_TOPICS and len(topics) * share < 1:
            return [self._keyset(base.filter(topic=topic), position, limit) for topic in topics]
        return [self._keyset(base.filter(topic__in=topics), position, limit)]

    def _keyset(self, queryset, position, limit):
        return pagination.keyset_page(queryset, position, limit, descending=self.descending)

    def _merged_sql(self, querysets: list[QuerySet], limit: int, *, columns: str) -> tuple[str, list]:
        """The merged next page of several topics (one queryset each), in one statement.

        Each topic's page is read from its own index, and their positions
        (id, timestamp) merged with UNION ALL; only then are the `columns` of
        the `limit` first read, by id. (Merging whole rows, SQLite took ten
        times as long: it copies every row, payload and all, to merge them.)
        Joined in that order (CROSS JOIN: SQLite keeps the merged positions
        the outer loop), so neither database sorts or scans the table.
        """
        parts, params = [], []
        for queryset in querysets:
            sql, topic_params = queryset.values_list("id", "timestamp").query.sql_with_params()
            parts.append(f"SELECT * FROM ({sql}) AS topic_{len(parts)}")
            params.extend(topic_params)
        direction = "DESC" if self.descending else "ASC"
        quote = connection.ops.quote_name
        table, timestamp, id_ = quote(Event._meta.db_table), quote("timestamp"), quote("id")
        merged = " UNION ALL ".join(parts) + f" ORDER BY {timestamp} {direction}, {id_} {direction} LIMIT {int(limit)}"
        sql = (
            f"SELECT {columns} FROM ({merged}) AS merged CROSS JOIN {table}"
            f" WHERE {table}.{id_} = merged.{id_}"
            f" ORDER BY merged.{timestamp} {direction}, merged.{id_} {direction}"
        )
        return sql, params

    def matches(self, event) -> bool:
        """The same filters in Python, for one Event (the cursor aside)."""
        if not self.pattern.matches(event.topic):
            return False
        if self.since and event.timestamp < self.since:
            return False
        if self.until and event.timestamp >= self.until:
            return False
        if self.sources and event.source not in self.sources:
            return False
        if self.text and not self._text_matches(event):
            return False
        return all(condition.matches(event.payload) for condition in self.payload)

    def _text_matches(self, event) -> bool:
        payload_text = getattr(event, "payload_text", None)
        if payload_text is None:
            payload_text = json.dumps(event.payload, ensure_ascii=False)
        needle = _fold_case(self.text)
        return needle in _fold_case(payload_text) or needle in _fold_case(event.source)


def _row_columns_sql() -> str:
    """ROW_COLUMNS as SQL, of the event table (payload_text as with_payload_text() reads it)."""
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    sql = {name: f"{table}.{quote(name)}" for name in ROW_COLUMNS}
    sql["payload_text"] = f"CAST({table}.{quote('payload')} AS text)"
    return ", ".join(sql[name] for name in ROW_COLUMNS)


def _position(cursor: str | None) -> pagination.Position | None:
    return pagination.decode_cursor(cursor) if cursor else None


@contextmanager
def _index_order_only():
    """On PostgreSQL, read the page in index order rather than sorting what a filter leaves.

    The planner cannot estimate how many rows a payload or text filter keeps
    and, guessing few, sorts every candidate (a million for `>`) instead of
    walking the index until the page is full; or it starts parallel workers,
    whose start costs more than a page. A page is always one index walk here,
    so neither is ever the better plan. SQLite plans it right.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off; SET LOCAL max_parallel_workers_per_gather = 0")
        yield
        # Inside an outer transaction they would outlive this block (an error
        # rolls back to the block's savepoint, which undoes them anyway).
        cursor.execute("SET LOCAL enable_sort TO DEFAULT; SET LOCAL max_parallel_workers_per_gather TO DEFAULT")


# SQLite's LIKE folds ASCII letters only; PostgreSQL's UPPER() every letter.
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _fold_case(text: str) -> str:
    return text.upper() if connection.vendor == "postgresql" else text.translate(_ASCII_UPPER)


def parse_instant(name: str, raw: str | None, *, now: datetime) -> datetime | None:
    """An RFC 3339 instant, or a duration back from `now` (90s, 15m, 2h, 7d); naive means UTC."""
    if not raw:
        return None
    if duration := _DURATION.fullmatch(raw):
        amount, unit = duration.groups()
        try:
            return now - timedelta(**{_DURATION_UNITS[unit]: int(amount)})
        except OverflowError:
            return EARLIEST  # further back than any event
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            {
                name: f"Not an instant: {raw!r}. Give RFC 3339 (2026-05-01T12:00:00Z) "
                "or a duration back from now (90s, 15m, 2h, 7d)."
            }
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant


def refuse_unknown_params(params, *, known: tuple[str, ...], payload_paths: bool = True) -> None:
    """Refuse with a 400 the first parameter not `known` (nor a payload path, nor DRF's `format`).

    A typo (`sorce=`) must not silently widen the search.
    """
    known = (*known, api_settings.URL_FORMAT_OVERRIDE)
    for name in params:
        if name not in known and not (payload_paths and name.startswith(PAYLOAD_PREFIX)):
            listed = ", ".join((*known, "payload.<path>") if payload_paths else known)
            raise ValidationError({name: f"Unknown parameter; the known ones are {listed}."})


def _refuse_nul(params) -> None:
    # PostgreSQL text cannot hold NUL, so no stored event has one: say so rather than fail.
    for name in params:
        if "\x00" in name or any("\x00" in value for value in _multiple(params, name)):
            raise ValidationError({name.replace("\x00", "\\u0000"): "NUL characters (\\u0000) cannot occur in events."})


def _single(params, name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    return value


def _multiple(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):
        return params.getlist(name)
    value = params.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _payload_conditions(params):
    for name in params:
        if not name.startswith(PAYLOAD_PREFIX):
            continue
        path = tuple(name.removeprefix(PAYLOAD_PREFIX).split("."))
        if len(path) > MAX_PAYLOAD_PATH_KEYS or not all(_PAYLOAD_KEY.fullmatch(key) for key in path):
            raise ValidationError(
                {
                    name: f"Not a payload path: give `payload.<key>[.<key>…]`, at most {MAX_PAYLOAD_PATH_KEYS} "
                    "non-empty keys without quotes, backslashes or control characters."
                }
            )
        values = _multiple(params, name)
        if not values:
            continue
        if len(values) > 1:
            raise ValidationError({name: "Give each payload path once: one value cannot equal two."})
        yield PayloadEquals(path, values[0])
