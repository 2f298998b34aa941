"""Persistence: the database (SQLAlchemy 2 + Alembic) and blob storage.

SQLite in the data folder by default (WAL, foreign keys on); PostgreSQL when
``RELTO_DATABASE_URL`` names one. Migrations are applied on start. Each capability
keeps its tables in a module of this package and its migrations on its own Alembic
branch, so capabilities never collide.
"""

from relto.store.blobs import BlobStore, LocalBlobStore
from relto.store.db import Base, Database, create_database

__all__ = ["Base", "BlobStore", "Database", "LocalBlobStore", "create_database"]
