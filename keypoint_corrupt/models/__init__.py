"""Reference pose models: hand3d's PoseNet (dense and depthwise) and NerPE, in PyTorch.

Needs the ``models`` extra (``pip install "keypoint-corrupt[models]"``); importing this
package without PyTorch raises an :class:`ImportError` that says so. ``import
keypoint_corrupt`` alone never imports PyTorch.

Examples
--------
>>> import torch
>>> from keypoint_corrupt.models import PoseNet, count_parameters
>>> net = PoseNet("dense")
>>> count_parameters(net)
17518847
>>> [tuple(m.shape) for m in net(torch.zeros(1, 3, 64, 64))]
[(1, 21, 8, 8), (1, 21, 8, 8), (1, 21, 8, 8)]
"""

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt.crop import CropInfo, HandCrop, crop_parameters, hand_crop, uncrop_keypoints, warp_crop
from keypoint_corrupt.models._torch import INSTALL_HINT
from keypoint_corrupt.models.checkpoint import build_model, load, read_checkpoint, save
from keypoint_corrupt.models.data import CropDataset
from keypoint_corrupt.models.hand3d_weights import export_hand3d_weights, load_hand3d_weights
from keypoint_corrupt.models.heatmaps import (
    decode_score_maps,
    gaussian_score_maps,
    posenet_loss,
    upsample_score_maps,
)
from keypoint_corrupt.models.nerpe import (
    DecodeResult,
    NerPE,
    continuous_targets,
    decode_field,
    nerpe_loss,
    sample_queries,
)
from keypoint_corrupt.models.posenet import (
    PoseNet,
    PoseNetTrunk,
    SeparableConv2d,
    count_parameters,
    preprocess_images,
)
from keypoint_corrupt.models.predictor import ModelPredictor, predict, validate
from keypoint_corrupt.models.training import TrainResult, lr_at, train

__all__ = [
    "INSTALL_HINT",
    "MODEL_NAMES",
    "CropDataset",
    "CropInfo",
    "DecodeResult",
    "HandCrop",
    "ModelPredictor",
    "NerPE",
    "PoseNet",
    "PoseNetTrunk",
    "SeparableConv2d",
    "TrainResult",
    "build_model",
    "continuous_targets",
    "count_parameters",
    "crop_parameters",
    "decode_field",
    "decode_score_maps",
    "export_hand3d_weights",
    "gaussian_score_maps",
    "hand_crop",
    "load",
    "load_hand3d_weights",
    "lr_at",
    "nerpe_loss",
    "posenet_loss",
    "predict",
    "preprocess_images",
    "read_checkpoint",
    "sample_queries",
    "save",
    "train",
    "uncrop_keypoints",
    "upsample_score_maps",
    "validate",
    "warp_crop",
]
