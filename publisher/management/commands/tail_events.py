import json
import os
import threading

from django.core.management.base import BaseCommand, CommandError

from loggregator_site.shutdown import stop_on_signals
from publisher.management.commands.publish_events import DEFAULT_URL
from publisher.stream_reader import Comment, EventStreamReader, StreamRefused


class Command(BaseCommand):
    help = (
        "Print a Loggregator live stream (GET /events/stream): the events of a topic or topic pattern as they "
        "are stored, one per line, until SIGTERM or Ctrl-C. Reconnects with Last-Event-ID after a disconnect, "
        "so nothing is missed or printed twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("pattern", help="A topic or topic pattern: orders.eu.created, orders.*.created, orders.>")
        parser.add_argument(
            "--url",
            default=os.environ.get("LOGGREGATOR_URL") or DEFAULT_URL,
            help=f"Aggregator base URL (default: $LOGGREGATOR_URL, else {DEFAULT_URL}).",
        )
        parser.add_argument(
            "--api-key",
            default=os.environ.get("LOGGREGATOR_API_KEY") or None,
            help="A key with the read scope, when reads are protected (default: $LOGGREGATOR_API_KEY).",
        )
        parser.add_argument("--after", default=None, help="Start after this cursor (an id the stream sent).")
        parser.add_argument("--since", default=None, help="Start with the events stored since: 15m, 2h, or RFC 3339.")
        parser.add_argument("--source", action="append", default=[], help="Only this source (repeatable).")
        parser.add_argument("--q", default=None, help="Only events whose payload or source contains this text.")
        parser.add_argument(
            "--payload", action="append", default=[], metavar="PATH=VALUE", help="payload.PATH=VALUE (repeatable)."
        )
        parser.add_argument("--json", action="store_true", help="Print each event as its JSON, nothing else.")

    def handle(self, *args, pattern, url, api_key, after, since, source, q, payload, **options):
        params = {"topic": pattern, "source": source}
        if since:
            params["since"] = since
        if q:
            params["q"] = q
        for condition in payload:
            path, equals, value = condition.partition("=")
            if not equals:
                raise CommandError(f"--payload takes PATH=VALUE, not {condition!r}.")
            params[f"payload.{path}"] = value
        reader = EventStreamReader(url, params, after=after, api_key=api_key)
        stop = threading.Event()
        failure: list[Exception] = []

        def follow():
            try:
                for item in reader.follow():
                    if not isinstance(item, Comment):
                        self._print(item, as_json=options["json"])
            except StreamRefused as exc:
                failure.append(exc)
            finally:
                stop.set()

        # Following runs in a thread; the main thread waits for a signal, then closes the stream.
        with stop_on_signals(stop):
            thread = threading.Thread(target=follow, name="tail", daemon=True)
            thread.start()
            stop.wait()
        reader.close()
        thread.join(5)
        if failure:
            raise CommandError(f"The aggregator refused the stream: {failure[0]}")
        if reader.last_id:
            self.stderr.write(f"Stopped. Resume with --after {reader.last_id}")

    def _print(self, message, *, as_json: bool) -> None:
        if message.event == "overflow":
            self.stderr.write(f"Fell behind the stream; resuming from {message.id}.")
        elif message.event == "event":
            if as_json:
                self.stdout.write(message.data)
                return
            event = json.loads(message.data)
            payload = json.dumps(event["payload"], separators=(",", ":"))
            self.stdout.write(f"{event['timestamp']} {event['topic']} {event['source']} {payload}")
