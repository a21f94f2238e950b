"""Time the publish validation on a 5,000-event batch of about 3.6 MB.

    python benchmark/scripts/bench_validation.py [path/to/other/validation.py]

Prints the best of several runs of parse_events for three bodies: compact JSON,
json.dumps' default spacing, and one whose payloads hold a string escape and an
exponent float (the exact, slower check). With a path, times that module too,
for a before/after comparison on the same machine at the same moment.
"""

import importlib.util
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # msgspec resolves the annotations through it
    spec.loader.exec_module(module)
    return module


def body(payload: dict, **dumps) -> bytes:
    batch = [
        {
            "topic": "orders.eu.created",
            "event_id": str(uuid.uuid4()),
            "timestamp": "2026-01-01T00:00:00Z",
            "source": "svc-a",
            "payload": payload,
        }
        for _ in range(5000)
    ]
    return json.dumps(batch, **dumps).encode()


def best_ms(parse, data: bytes, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        parse(data, max_events=10_000)
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main():
    payload = {f"field_{i}": "x" * 16 for i in range(20)}
    bodies = {
        "compact": body(payload, separators=(",", ":")),
        "json.dumps default": body(payload),
        "escapes and exponents": body({**payload, "note": "caf\u00e9", "ratio": 1e-7}),
    }
    modules = {"this tree": str(Path(__file__).resolve().parent.parent.parent / "events" / "validation.py")}
    if len(sys.argv) > 1:
        modules["other"] = sys.argv[1]
    for label, data in bodies.items():
        timings = [
            f"{name} {best_ms(load(path, f'validation_{i}').parse_events, data):6.1f} ms"
            for i, (name, path) in enumerate(modules.items())
        ]
        print(f"{label:24} {len(data) / 1e6:.2f} MB: " + ", ".join(timings))


if __name__ == "__main__":
    main()
