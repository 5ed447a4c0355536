"""One job from upload to result.

- :mod:`scene3d.jobs.paths`: where a job's files live (the upload and the engine's run folder),
- :mod:`scene3d.jobs.progress`: engine steps -> API stages and percent, readable errors,
- :mod:`scene3d.jobs.flow`: the ordered task ids and which run on the model worker (light:
  DAG files import it at parse time),
- :mod:`scene3d.jobs.tasks`: the task functions (thin: call an engine step, record progress),
- :mod:`scene3d.jobs.runner`: run one task where it belongs, or a whole job in this process.
"""
