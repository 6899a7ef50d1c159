"""Read (and write) hand3d's pickled PoseNet weights.

hand3d distributes weights as a pickle of a dict from TensorFlow variable names to NumPy
arrays: ``PoseNet2D/conv1_1/weights`` (filters, HWIO: height, width, in, out) and
``PoseNet2D/conv1_1/biases``, for conv1_1 .. conv5_2 and the refinement layers conv6_1 ..
conv7_7. PyTorch stores filters as OIHW, hence the transpose. Separable layers use the
names of TensorFlow's ``separable_conv2d`` (``depthwise_weights`` ``k x k x C x K``,
``pointwise_weights`` ``1 x 1 x CK x out``, ``biases``).

Unpickling runs code from the file: only load weight files you trust.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from keypoint_corrupt.models._torch import nn, torch
from keypoint_corrupt.models.posenet import SeparableConv2d

__all__ = ["HAND3D_SCOPE", "export_hand3d_weights", "load_hand3d_weights"]

#: hand3d's TensorFlow variable scope for PoseNet.
HAND3D_SCOPE = "PoseNet2D"


def _hand3d_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    layers = getattr(model, "named_hand3d_layers", None)
    if layers is None:  # NerPE's PoseNet trunk
        layers = getattr(getattr(model, "encoder", None), "named_hand3d_layers", None)
    if not callable(layers):
        raise TypeError(
            f"{type(model).__name__} has no hand3d layers (PoseNet, PoseNetTrunk or NerPE expected)"
        )
    named: Iterator[tuple[str, nn.Module]] = layers()
    yield from named


def _tensors_for(module: nn.Module) -> dict[str, tuple[torch.Tensor, str]]:
    # hand3d leaf name -> (PyTorch parameter, layout of the TF array).
    if isinstance(module, SeparableConv2d):
        tensors = {
            "depthwise_weights": (module.depthwise.weight, "depthwise"),
            "pointwise_weights": (module.pointwise.weight, "hwio"),
        }
        bias = module.pointwise.bias
    elif isinstance(module, nn.Conv2d):
        tensors, bias = {"weights": (module.weight, "hwio")}, module.bias
    else:
        raise TypeError(f"not a hand3d layer: {type(module).__name__}")
    if bias is None:
        raise TypeError(f"{type(module).__name__} has no bias; every hand3d layer has one")
    return {**tensors, "biases": (bias, "bias")}


def _to_torch(array: np.ndarray, layout: str, like: torch.Tensor) -> torch.Tensor:
    a = np.asarray(array, dtype=np.float32)
    if layout == "hwio":  # H x W x in x out -> out x in x H x W
        a = a.transpose(3, 2, 0, 1)
    elif layout == "depthwise":  # H x W x C x K -> (C K) x 1 x H x W, channel c*K + m as in TF
        h, w, c, k = a.shape
        a = a.reshape(h, w, c * k).transpose(2, 0, 1)[:, None]
    return torch.from_numpy(np.ascontiguousarray(a)).to(like.dtype)


def _to_tf(tensor: torch.Tensor, layout: str, in_channels: int = 1) -> np.ndarray:
    a = tensor.detach().to("cpu", torch.float32).numpy()
    if layout == "depthwise":  # (C K) x 1 x H x W -> H x W x C x K
        return a[:, 0].transpose(1, 2, 0).reshape(a.shape[2], a.shape[3], in_channels, -1)
    if layout == "hwio":
        return np.ascontiguousarray(a.transpose(2, 3, 1, 0))
    return a.copy()


def _read(weights: str | os.PathLike[str] | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if isinstance(weights, Mapping):
        raw = dict(weights)
    else:
        with Path(weights).open("rb") as fh:
            # hand3d's pickles come from Python 2: latin-1 decodes their NumPy byte strings.
            raw = pickle.load(fh, encoding="latin1")
        if not isinstance(raw, Mapping):
            raise ValueError(f"{weights} does not hold a dict of weights (got {type(raw).__name__})")
    # Some exports keep TensorFlow's ":0" output suffix.
    return {str(k).removesuffix(":0"): v for k, v in raw.items()}


def load_hand3d_weights(
    model: nn.Module,
    weights: str | os.PathLike[str] | Mapping[str, np.ndarray],
    *,
    strict: bool = True,
    scope: str = HAND3D_SCOPE,
) -> list[str]:
    """Load hand3d's pickled PoseNet weights into a model.

    Parameters
    ----------
    model : torch.nn.Module
        :class:`PoseNet` (dense or depthwise), :class:`PoseNetTrunk`, or :class:`NerPE`
        with the PoseNet encoder (its trunk layers are loaded).
    weights : str, path-like or mapping
        A pickle file of ``{"PoseNet2D/conv1_1/weights": HWIO array, ...}``, or that dict.
        Variables of other scopes (HandSegNet, PosePrior, ...) are ignored.
    strict : bool
        Require every layer of the model to be found and every ``scope/`` variable to be
        used. With ``strict=False`` the layers found are loaded and the rest are left as
        they are (e.g. a depthwise model takes its first 17 layers from dense weights).
    scope : str
        Variable scope of the network in the file.

    Returns
    -------
    list of str
        The hand3d layer names that were loaded.

    Raises
    ------
    KeyError
        ``strict`` and a layer or variable is missing or left over.
    ValueError
        A variable's shape does not match the model.

    Examples
    --------
    >>> from keypoint_corrupt.models import PoseNet
    >>> net = PoseNet()
    >>> loaded = load_hand3d_weights(PoseNet(), export_hand3d_weights(net))
    >>> loaded[0], loaded[-1], len(loaded)
    ('conv1_1', 'conv7_7', 31)
    """
    arrays = _read(weights)
    prefix = f"{scope}/"
    ours = {k for k in arrays if k.startswith(prefix)}
    used: set[str] = set()
    loaded: list[str] = []
    missing: list[str] = []
    updates: list[tuple[torch.Tensor, torch.Tensor]] = []
    for name, module in _hand3d_layers(model):
        tensors = _tensors_for(module)
        keys = {leaf: f"{prefix}{name}/{leaf}" for leaf in tensors}
        absent = [key for key in keys.values() if key not in arrays]
        if absent:
            missing.extend(absent)
            continue
        for leaf, (param, layout) in tensors.items():
            value = _to_torch(arrays[keys[leaf]], layout, param)
            if value.shape != param.shape:
                raise ValueError(
                    f"{keys[leaf]}: shape {tuple(np.shape(arrays[keys[leaf]]))} does not fit "
                    f"{name} (expects {tuple(param.shape)} in PyTorch layout)"
                )
            updates.append((param, value))
        used.update(keys.values())
        loaded.append(name)
    unexpected = sorted(ours - used)
    if strict and (missing or unexpected):
        raise KeyError(f"hand3d weights do not match the model: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():  # only after every check passed: no half-loaded model on error
        for param, value in updates:
            param.copy_(value.to(param.device))
    return loaded


def export_hand3d_weights(model: nn.Module, scope: str = HAND3D_SCOPE) -> dict[str, np.ndarray]:
    """Export a model's PoseNet layers as a hand3d-style dict (HWIO float32 arrays).

    The inverse of :func:`load_hand3d_weights`; pickle the result to get a file in
    hand3d's format.

    Examples
    --------
    >>> from keypoint_corrupt.models import PoseNet
    >>> d = export_hand3d_weights(PoseNet())
    >>> d["PoseNet2D/conv1_1/weights"].shape, d["PoseNet2D/conv7_7/biases"].shape
    ((3, 3, 3, 64), (21,))
    """
    out: dict[str, np.ndarray] = {}
    for name, module in _hand3d_layers(model):
        for leaf, (param, layout) in _tensors_for(module).items():
            in_channels = 1
            if isinstance(module, SeparableConv2d) and layout == "depthwise":
                in_channels = module.depthwise.in_channels
            arr = _to_tf(param, layout, in_channels)
            out[f"{scope}/{name}/{leaf}"] = np.ascontiguousarray(arr, dtype=np.float32)
    return out
