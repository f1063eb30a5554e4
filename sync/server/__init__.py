"""The county server: FastAPI over SQLAlchemy Core (SQLite by default, PostgreSQL in production).

Never imports the device store (``store.store``); it shares only the schema and its validation.
"""
