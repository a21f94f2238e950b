"""Migration 0008 drops SQLite's JSON_VALID() check on the payload and changes nothing else."""

import sqlite3
import subprocess

from harness.processes import PROJECT_DIR, manage, service_env

EVENTS = "events_event"


def migrate_to(env, target=None):
    subprocess.run(
        manage("migrate", *(["events", target] if target else []), "--noinput", "-v0"),
        cwd=PROJECT_DIR,
        env=env,
        check=True,
    )


def test_the_rebuilt_events_table_keeps_its_rows_columns_indexes_and_id_counter(tmp_path):
    database = tmp_path / "db.sqlite3"
    env = service_env(f"sqlite:///{database}")
    migrate_to(env, "0007")
    with sqlite3.connect(database) as connection:
        columns_before = connection.execute(f"SELECT name FROM pragma_table_info('{EVENTS}')").fetchall()
        indexes_before = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name", [EVENTS]
        ).fetchall()
        for number in (1, 2, 3):
            connection.execute(
                f"INSERT INTO {EVENTS} (topic, event_id, timestamp, source, payload) VALUES (?, ?, ?, ?, ?)",
                ["orders", f"{number:032x}", "2026-01-01 00:00:00", "svc", f'{{"n": {number}}}'],
            )
        connection.execute(f"DELETE FROM {EVENTS} WHERE id = 3")  # the counter stays at 3: ids are never reused
    connection.close()

    migrate_to(env)

    with sqlite3.connect(database) as connection:
        (table_sql,) = connection.execute("SELECT sql FROM sqlite_master WHERE name = ?", [EVENTS]).fetchone()
        assert "JSON_VALID" not in table_sql
        assert connection.execute(f"SELECT name FROM pragma_table_info('{EVENTS}')").fetchall() == columns_before
        indexes_after = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name", [EVENTS]
        ).fetchall()
        assert indexes_after == indexes_before
        assert connection.execute(f"SELECT id, payload FROM {EVENTS} ORDER BY id").fetchall() == [
            (1, '{"n": 1}'),
            (2, '{"n": 2}'),
        ]
        assert connection.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [EVENTS]).fetchone() == (3,)
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
