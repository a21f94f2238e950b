"""Drop SQLite's JSON_VALID() check on Event.payload (events.fields.PayloadField).

Django would rebuild the table with the payload moved before the other
columns; this rebuild keeps the table exactly as it was, check aside: the
same column order, indexes and AUTOINCREMENT counter. PostgreSQL's jsonb
column has no such check: nothing changes there.
"""

from django.db import migrations

import events.fields

TABLE = "events_event"
CHECK = ' CHECK ((JSON_VALID("payload") OR "payload" IS NULL))'


def rebuild_without_check(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [TABLE])
        (table_sql,) = cursor.fetchone()
        if CHECK not in table_sql:
            return
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [TABLE]
        )
        index_sqls = [sql for (sql,) in cursor.fetchall()]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [TABLE])
        sequence = cursor.fetchone()
        cursor.execute(table_sql.replace(CHECK, "").replace(f'"{TABLE}"', f'"new__{TABLE}"', 1))
        cursor.execute(f'INSERT INTO "new__{TABLE}" SELECT * FROM "{TABLE}"')
        cursor.execute(f'DROP TABLE "{TABLE}"')
        cursor.execute(f'ALTER TABLE "new__{TABLE}" RENAME TO "{TABLE}"')
        for sql in index_sqls:
            cursor.execute(sql)
        if sequence is not None:
            cursor.execute("UPDATE sqlite_sequence SET seq = MAX(seq, %s) WHERE name = %s", [sequence[0], TABLE])


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_event_unique_event_id_first"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="event", name="payload", field=events.fields.PayloadField()),
            ],
            database_operations=[migrations.RunPython(rebuild_without_check, migrations.RunPython.noop)],
        ),
    ]
