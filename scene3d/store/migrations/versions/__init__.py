"""Alembic revisions of the job store, applied in order by ``JobStore.migrate()``."""
