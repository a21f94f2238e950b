"""Settings come from the environment; a bad value stops the service at startup, loudly."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ImproperlyConfigured

from loggregator_site import env, secret_key
from tests.servers import PROJECT_DIR, service_env


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False), ("", True)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env.env_bool("FLAG", True) is expected


@pytest.mark.parametrize(
    ("reader", "raw"),
    [(env.env_bool, "maybe"), (env.env_int, "12x"), (env.env_int, "-1"), (env.env_float, "nan"), (env.env_float, "x")],
)
def test_a_bad_value_names_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("SETTING", raw)
    with pytest.raises(ImproperlyConfigured, match="SETTING="):
        reader("SETTING", 1)


def check(*args, **environment):
    env_vars = service_env(f"sqlite:///{PROJECT_DIR}/data/never-created.sqlite3")
    env_vars.pop("SECRET_KEY", None)
    env_vars.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args], cwd=PROJECT_DIR, env=env_vars, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"DEBUG": "perhaps"}, "DEBUG='perhaps' is not a boolean"),
        ({"DEBUG": "false"}, "SECRET_KEY (or SECRET_KEY_FILE) must be set"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL is not a usable database URL"),
        ({"LOGGREGATOR_MAX_BATCH_EVENTS": "0"}, "LOGGREGATOR_MAX_BATCH_EVENTS='0' must be at least 1"),
        ({"LOGGREGATOR_PUBLISH_RATE": "fast"}, "LOGGREGATOR_PUBLISH_RATE='fast' is not a rate"),
    ],
)
def test_the_service_refuses_to_start_with_a_bad_setting(environment, message):
    result = check(**environment)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_defaults_work_on_a_laptop():
    result = check()
    assert result.returncode == 0, result.stderr


def deploy_check(**environment):
    production = {
        "DEBUG": "false",
        "SECRET_KEY": "kJ3vT9xQ2mW7pL5rB8nY4cF6hD1sG0aZeUoIiOyTtRrEwQqMmNnBbVvCcXxLlKkJj",
        "ALLOWED_HOSTS": "logs.example.com",
    }
    return check("--deploy", "--fail-level", "WARNING", **{**production, **environment})


def warning_ids(output: str) -> set[str]:
    return set(re.findall(r"\((security\.W\d+)\)", output))


def test_the_production_settings_pass_the_deploy_check_but_for_the_justified_warnings():
    # README-reliability.md justifies these two: TLS, its redirect and HSTS
    # belong to the reverse proxy in front of gunicorn.
    result = deploy_check()
    assert warning_ids(result.stderr) == {"security.W004", "security.W008"}, result.stderr


def test_with_django_handling_https_the_deploy_check_is_clean():
    result = deploy_check(
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_a_secret_key_one_is_generated_into_secret_key_file_and_kept(tmp_path):
    key_file = tmp_path / "secret_key"
    first = deploy_check(SECRET_KEY="", SECRET_KEY_FILE=str(key_file))
    key = key_file.read_text().strip()
    # A strong key (the deploy check judges it), readable by its owner only, and never printed.
    assert warning_ids(first.stderr) == {"security.W004", "security.W008"}, first.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key not in first.stdout + first.stderr

    assert deploy_check(SECRET_KEY="", SECRET_KEY_FILE=str(key_file)).returncode == 1  # the same warnings
    assert key_file.read_text().strip() == key


def test_a_given_secret_key_wins_over_secret_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "given")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "secret_key"))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)",
        ],
        cwd=PROJECT_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "loggregator_site.settings"},
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "given", result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_processes_starting_at_once_all_get_the_one_generated_key(tmp_path):
    key_file = tmp_path / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key.read_or_create(key_file), range(32)))
    assert keys == {key_file.read_text().strip()}
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]  # no pending file left behind


def test_an_empty_secret_key_file_is_refused_with_a_hint(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("\n")
    with pytest.raises(ImproperlyConfigured, match="is empty: delete it"):
        secret_key.read_or_create(key_file)
