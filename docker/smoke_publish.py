"""Publish a known set of events to a running Loggregator and print what the
counters must show afterwards. Standard library only, so it runs anywhere.

    python docker/smoke_publish.py URL [EVENTS] [DUPLICATES]

Sends EVENTS distinct events over 3 topics in batches of 500, then sends
DUPLICATES of them again, and prints one JSON line:
{"sent": ..., "unique": ..., "duplicates": ..., "topics": [...]}.
"""

import datetime
import json
import sys
import urllib.request
import uuid

TOPICS = ["check.web", "check.consumer", "check.volume"]
BATCH = 500


def post(url: str, events: list[dict]) -> None:
    request = urllib.request.Request(
        url.rstrip("/") + "/publish",
        data=json.dumps(events).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    if response.status != 202 or body.get("accepted") != len(events):
        raise SystemExit(f"publish answered {response.status} {body}")


def main() -> None:
    url = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    duplicates = int(sys.argv[3]) if len(sys.argv) > 3 else count // 5
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    events = [
        {
            "topic": TOPICS[i % len(TOPICS)],
            "event_id": str(uuid.uuid4()),
            "timestamp": now,
            "source": "docker-check",
            "payload": {"n": i},
        }
        for i in range(count)
    ]
    resend = events[:duplicates]
    for chunk in range(0, count, BATCH):
        post(url, events[chunk : chunk + BATCH])
    for chunk in range(0, duplicates, BATCH):
        post(url, resend[chunk : chunk + BATCH])
    used = sorted({e["topic"] for e in events})
    print(json.dumps({"sent": count + duplicates, "unique": count, "duplicates": duplicates, "topics": used}))


if __name__ == "__main__":
    main()
