"""Count the CPU instructions that validating one 5000-event batch takes: a figure noise does not move.

    python benchmark/scripts/count_validation_instructions.py [--batches N] [--workload batch5000]

On a shared machine the time a stage takes moves by 2x from one minute to the
next; the instructions it executes do not. This runs the interpreter under
valgrind's callgrind twice, building the same workload's bodies each time,
once validating none of them and once validating N (default 4) with
events.validation.parse_events, and prints the difference per batch. Needs
valgrind (Debian's `valgrind` package). Compare trees with it, not machines.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--workload", default="batch5000", choices=["batch5000", "batch500x4"])
    args = parser.parse_args()
    if os.environ.get("_VALIDATE_BATCHES") is not None:
        return validate(args.workload, args.batches, int(os.environ["_VALIDATE_BATCHES"]))
    counts = [instructions(args, validated) for validated in (0, args.batches)]
    per_batch = (counts[1] - counts[0]) / args.batches
    print(
        f"{args.workload}: {per_batch / 1e6:,.1f} million instructions to validate one batch ({args.batches} batches)"
    )


def instructions(args, validated: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    command += ["--batches", str(args.batches), "--workload", args.workload]
    result = subprocess.run(
        command, env={**os.environ, "_VALIDATE_BATCHES": str(validated)}, capture_output=True, text=True, check=True
    )
    return int(re.search(r"Collected : (\d+)", result.stderr)[1])


def validate(workload_name: str, batches: int, validated: int) -> None:
    sys.path.insert(0, str(PROJECT))
    from benchmark.standalone import setup_django

    setup_django("validation-instructions", None)
    from dataclasses import replace

    from benchmark.workloads import FULL, build_plan
    from events.validation import parse_events

    workload = FULL[workload_name]
    plan = build_plan(replace(workload, events=workload.batch * batches), seed=24)
    for body in plan.bodies[:validated]:
        parse_events(body, max_events=10_000)


if __name__ == "__main__":
    main()
