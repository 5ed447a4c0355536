"""The reconstruction engine, usable on its own (``scene3d reconstruct``).

One module (or package) per step: :mod:`~pipeline.ingest`, :mod:`~pipeline.features` (with
:mod:`~pipeline.learned` and :mod:`~pipeline.descriptor_store`), :mod:`~pipeline.pairs` (with
:mod:`~pipeline.retrieval`), :mod:`~pipeline.matching`, :mod:`~pipeline.scenes`,
:mod:`~pipeline.sfm` and :mod:`~pipeline.export`. :mod:`~pipeline.reconstruct` runs them in
one run folder (:mod:`~pipeline.layout`); :mod:`~pipeline.config` and :mod:`~pipeline.presets`
configure them; :mod:`~pipeline.progress`, :mod:`~pipeline.errors` and
:mod:`~pipeline.registry` are what they share. :mod:`~pipeline.eval` holds the evaluation
tools; it calls the engine, never the other way round.
"""
