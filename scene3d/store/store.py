"""The :class:`JobStore` façade: users, jobs and their clusters in SQLite or PostgreSQL.

Each concern lives in its own module and contributes one part (a :class:`Database`
subclass) to the façade:

* :mod:`scene3d.store.engine` — the engine, SQLite WAL/busy timeout, connection helpers;
* :mod:`scene3d.store.schema` — ``migrate()`` with Alembic;
* :mod:`scene3d.store.users` — users;
* :mod:`scene3d.store.jobs` — job rows and drift verdicts;
* :mod:`scene3d.store.progress` — the monotonic ``update_progress`` and ``mark_failed``;
* :mod:`scene3d.store.clusters` — a job's reconstructed models;
* :mod:`scene3d.store.metrics` — aggregates for Prometheus.
"""

from __future__ import annotations

from scene3d.store.clusters import ClusterStore
from scene3d.store.jobs import JobRowStore
from scene3d.store.metrics import MetricsStore
from scene3d.store.progress import ProgressStore
from scene3d.store.schema import SchemaStore
from scene3d.store.users import UserStore


class JobStore(SchemaStore, UserStore, JobRowStore, ProgressStore, ClusterStore, MetricsStore):
    """Users, jobs and clusters behind one SQLAlchemy engine; returns frozen records.

    ``JobStore(url, clock=...)`` takes the arguments of :class:`scene3d.store.engine.Database`.
    One per process is enough; it is thread-safe (each call takes its own connection from
    the pool) and several processes (the API, Airflow tasks, the CLI) may share one database.
    """
