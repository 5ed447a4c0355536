"""One module per learned model: its extractor and the LightGlue weights trained on it.

Every module here is a model (see :mod:`pipeline.learned` for what it must define); the
file name is the model's name. Modules import torch and the model packages only inside
their functions, so listing them stays cheap.
"""
