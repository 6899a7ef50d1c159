"""The bundled models (PoseNet dense / depthwise, NerPE) as benchmark predictors.

The predictor itself is :class:`keypoint_corrupt.models.ModelPredictor` (the models' one
inference path, also behind :func:`keypoint_corrupt.models.predict` and training's
validation); it is re-exported here with :class:`CropPreparer` and ``PRECISIONS``.
:func:`load_predictor` builds one from a model name and / or a checkpoint.

This module imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt.models import build_model, load
from keypoint_corrupt.models.predictor import PRECISIONS, CropPreparer, ModelPredictor

__all__ = [
    "PRECISIONS",
    "CropPreparer",
    "ModelPredictor",
    "load_predictor",
]


def load_predictor(
    model: str | None = None, weights: str | os.PathLike[str] | None = None, **kwargs: Any
) -> ModelPredictor:
    """Build a bundled model's predictor from its name and/or a checkpoint.

    Parameters
    ----------
    model : {"posenet-dense", "posenet-depthwise", "nerpe"}, optional
        Model name; checked against the checkpoint's. Without ``weights``, a randomly
        initialised network (useful for speed measurements only).
    weights : path, optional
        Checkpoint from :func:`keypoint_corrupt.models.save` (or ``keypoint-corrupt train``).
    **kwargs
        :class:`ModelPredictor` options (``cudnn_benchmark`` defaults to True here: a benchmark
        process runs fixed crop shapes and wants the fastest kernels).

    Examples
    --------
    >>> load_predictor("posenet-depthwise", device="cpu").model_name
    'posenet-depthwise'
    """
    if model is not None and model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODEL_NAMES)}")
    kwargs.setdefault("cudnn_benchmark", True)
    if weights is None:
        if model is None:
            raise ValueError("give a model name, a checkpoint, or both")
        return ModelPredictor(build_model(model), **kwargs)
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    net = load(path)
    if model is not None and net.model_name != model:
        raise ValueError(f"{path} holds a {net.model_name} model, not {model}")
    return ModelPredictor(net, **kwargs)
