"""The MLflow pyfunc flavour of a model version: the engine with one configuration.

A version's artifacts hold the configuration (``config.json``, every setting) and the weight
files a learned extractor needs (``weights/``, copied in); the code is
the installed package's (DESIGN: ``code_paths`` cannot hot-swap code, so versions carry
configuration only). ``mlflow.pyfunc.load_model("models:/scene3d-reconstruction@champion")``
gives a reconstructor: each input row names a ZIP or folder of photos and an output folder,
each output row summarises that reconstruction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from pipeline.config import PipelineConfig
from scene3d.served import config_from_artifacts

CONFIG_ARTIFACT = "config"
"""Key of the configuration file in a version's artifacts."""
WEIGHTS_ARTIFACT = "weights"
"""Key of the folder with copies of a learned extractor's weight files (absent for SIFT)."""

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "source"),
            ColSpec("string", "out_dir"),
            ColSpec("string", "dataset", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec("string", "out_dir"),
            ColSpec("long", "n_images"),
            ColSpec("long", "n_registered"),
            ColSpec("long", "n_clusters"),
            ColSpec("long", "n_points"),
            ColSpec("double", "registration_rate"),
        ]
    ),
)
"""Photos in (a ZIP or folder, where results go), a reconstruction summary out."""


class ReconstructionModel(mlflow.pyfunc.PythonModel):
    """Reconstructs photo collections with the configuration of its version."""

    config: PipelineConfig | None = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        weights = context.artifacts.get(WEIGHTS_ARTIFACT)
        self.config = config_from_artifacts(
            Path(context.artifacts[CONFIG_ARTIFACT]), Path(weights) if weights else None
        )

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        from pipeline.reconstruct import reconstruct

        rows = []
        for row in model_input.to_dict("records"):
            result = reconstruct(
                Path(row["source"]),
                Path(row["out_dir"]),
                self.config,
                dataset=row.get("dataset") or "custom",
            )
            rows.append(
                {
                    "out_dir": row["out_dir"],
                    "n_images": result.n_images,
                    "n_registered": result.n_registered,
                    "n_clusters": len(result.clusters),
                    "n_points": result.n_points,
                    "registration_rate": result.registration_rate,
                }
            )
        return pd.DataFrame(rows)
