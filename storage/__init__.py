"""Thread memory, images and settings in SQL (SQLAlchemy 2 + alembic); built in a later issue."""
