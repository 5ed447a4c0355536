"""The reconstruction flow: the ordered task ids and where each runs.

The one list both the Airflow DAG and the local runner follow. No imports beyond the
standard library: ``dags/reconstruction_dag.py`` reads it at parse time.
"""

from __future__ import annotations

RECONSTRUCTION_TASKS = ("extract", "drift_check", "matching", "triangulate", "decimate", "export")
"""Task ids in order; :data:`scene3d.jobs.tasks.TASKS` has a function for each."""

WORKER_TASKS = frozenset({"matching"})
"""Tasks that run on the model worker (next to the loaded model and the GPU) when a Ray
cluster is configured; in the Airflow DAG they take a slot of the GPU pool."""
