"""Batched corruptions on torch tensors, on any device (PyTorch needed: the ``models`` extra).

``import keypoint_corrupt`` never imports this package; ``import keypoint_corrupt.torch`` does,
and fails with an install hint when PyTorch is missing.

* :func:`apply_config`: the eleven reference configurations on a ``B x C x H x W`` batch, with
  :func:`config_rngs` giving a dataset's per-sample generators;
* :func:`get_kernel`: the ImageNet-C kernels by name (``keypoint_corrupt.torch.imagenet_c``);
* :class:`Corruption` (one configuration) and :class:`SuiteSampler` (a suite, per-sample
  choice) as ``torch.nn.Module``.

Sample ``b`` of a batch equals the CPU path on image ``b`` with the same generator;
``docs/torch.md`` lists which kernels are bit-exact.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "keypoint_corrupt.torch needs PyTorch, which is not installed. Install it with: "
        'pip install "keypoint-corrupt[models]"'
    ) from exc

from keypoint_corrupt.torch._batch import check_batch, check_rngs, check_severities, from_numpy, to_numpy
from keypoint_corrupt.torch.imagenet_c import get_kernel
from keypoint_corrupt.torch.modules import Corruption, SuiteSampler
from keypoint_corrupt.torch.reference import apply_config, config_rngs, supports_config

__all__ = [
    "Corruption",
    "SuiteSampler",
    "apply_config",
    "check_batch",
    "check_rngs",
    "check_severities",
    "config_rngs",
    "from_numpy",
    "get_kernel",
    "supports_config",
    "to_numpy",
]
