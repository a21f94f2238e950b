"""manage.py benchmark: the aggregator measured end to end against a raw-SQLite ceiling."""
