"""Evaluation tools around the engine: the IMC2025 metric, the benchmark runners and their
reports, the plain-COLMAP baseline and the generated test scenes.

Nothing in the engine imports this package; it only calls the engine.
"""
