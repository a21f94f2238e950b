"""Count the CPU instructions one 5000-event batch takes in a stage of the write path: a figure noise does not move.

    python benchmark/scripts/count_instructions.py [--stage validate|store] [--batches N] [--workload batch5000]

On a shared machine the time a stage takes moves by 2x from one minute to the
next; the instructions it executes do not. This runs the interpreter under
valgrind's callgrind twice, doing the same preparation each time, and prints
the difference per batch:
- `validate`: builds the workload's bodies, then validates none of them, or N
  (default 4) with events.validation.parse_events;
- `store`: also queues the N batches in a fresh SQLite database, then stores
  none of them, or all (the consumer's store.process_next_batch: read, decode,
  insert, count, delete, commit).
Needs valgrind (Debian's `valgrind` package). Compare trees with it, not machines.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
# Set in the runs under callgrind: how many batches to take through the stage.
CHILD = "_COUNT_INSTRUCTIONS_BATCHES"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="validate", choices=["validate", "store"])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--workload", default="batch5000", choices=["batch5000", "batch500x4"])
    args = parser.parse_args()
    if os.environ.get(CHILD) is not None:
        return run_stage(args, int(os.environ[CHILD]))
    counts = [instructions(args, taken) for taken in (0, args.batches)]
    per_batch = (counts[1] - counts[0]) / args.batches
    print(
        f"{args.stage}, {args.workload}: {per_batch / 1e6:,.1f} million instructions per batch ({args.batches} batches)"
    )


def instructions(args, taken: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    command += ["--stage", args.stage, "--batches", str(args.batches), "--workload", args.workload]
    # A fixed hash seed: string hashes decide the order of sets and dicts, and with it how much work some steps do.
    env = {**os.environ, CHILD: str(taken), "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", result.stderr)[1])


def run_stage(args, taken: int) -> None:
    sys.path.insert(0, str(PROJECT))
    from benchmark.standalone import setup_django

    scratch = setup_django("count-instructions", None)  # noqa: F841  (kept until the process ends)
    from dataclasses import replace

    from django.core.management import call_command

    from benchmark.workloads import FULL, build_plan
    from events import intake, store
    from events.validation import parse_events

    workload = FULL[args.workload]
    bodies = build_plan(replace(workload, events=workload.batch * args.batches), seed=24).bodies
    if args.stage == "validate":
        for body in bodies[:taken]:
            parse_events(body, max_events=10_000)
        return
    call_command("migrate", verbosity=0)
    for body in bodies:
        intake.enqueue(parse_events(body, max_events=10_000))
    for _ in range(taken):
        store.process_next_batch(max_events=workload.batch)


if __name__ == "__main__":
    main()
