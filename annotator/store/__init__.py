"""The database: SQLModel tables (models.py) and engine, sessions and migrations (db.py)."""
