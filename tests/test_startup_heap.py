"""Long-running processes freeze what they loaded at startup, out of the garbage collector's way."""

import gc
import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from harness.processes import PROJECT_DIR

# gunicorn runs the hook in each worker once the app is loaded; here, the
# same in a fresh interpreter with Django loaded.
WORKER = """
import gc, runpy, django
django.setup()
import loggregator_site.asgi
conf = runpy.run_path("loggregator_site/gunicorn.conf.py")
tracked, frozen = len(gc.get_objects()), gc.get_freeze_count()
conf["post_worker_init"](None)
print(tracked, frozen, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_a_gunicorn_worker_freezes_the_app_it_loaded():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "loggregator_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    tracked, frozen_before, frozen_after, tracked_after = map(int, result.stdout.split())
    assert frozen_before == 0
    assert frozen_after >= tracked * 0.9  # everything the app loaded, tens of thousands of objects
    assert tracked > 10_000
    assert tracked_after < tracked / 10  # what collections still walk


@pytest.mark.django_db
def test_run_consumer_freezes_what_it_loaded():
    assert gc.get_freeze_count() == 0
    try:
        call_command("run_consumer", "--once")
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
