"""Thread memory, images, settings, feedback and ledgers in SQL (SQLAlchemy 2 + alembic)."""
