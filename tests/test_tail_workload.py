"""The tail workload's pieces that run outside the benchmark's own process."""

import os
import subprocess
import sys

from harness.processes import PROJECT_DIR


def test_the_stream_holder_imports_in_a_process_without_django():
    # The holder runs in a spawned process, which imports its module before
    # (and without) Django's setup: a Django import there fails the workload.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    code = "import sys, benchmark.stream_holder; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
