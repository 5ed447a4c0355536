"""Alembic environment of the job store.

Used programmatically by :meth:`scene3d.store.JobStore.migrate`; there is no alembic.ini.
To write a new revision from a checkout::

    python -c "from scene3d.store import alembic_config; \
from alembic import command; command.revision(alembic_config('sqlite:///x.db'), 'msg')"
"""
