"""PoseNet, the 2D keypoint detector of hand3d (Zimmermann & Brox 2017), in PyTorch.

Layer for layer the network of ``lmb-freiburg/hand3d`` (``PoseNet2D``): 3x3 convolutions
with 2x2 max pooling down to a 128-channel *encoding* at 1/8 of the input size, a first
score-map head and ``refinement_stages`` refinement stages that see the previous score map
concatenated with the encoding. Every convolution has stride 1, 'SAME' padding and a bias;
every one except the score-map outputs is followed by a leaky ReLU of slope 0.01.

The ``"depthwise"`` variant (Costa et al.) keeps the first 17 layers and turns every later
layer into a depthwise separable convolution: a ``k x k`` depthwise convolution with a depth
multiplier, then a ``1 x 1`` pointwise convolution, with the activation kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from keypoint_corrupt.models._torch import F, nn, torch

__all__ = [
    "LEAKY_SLOPE",
    "NUM_ENCODER_LAYERS",
    "NUM_TRUNK_LAYERS",
    "ConvSpec",
    "PoseNet",
    "PoseNetTrunk",
    "SeparableConv2d",
    "count_parameters",
    "posenet_layer_specs",
    "preprocess_images",
]

#: Negative slope of hand3d's leaky ReLU (``NetworkOps.neg_slope_of_relu``).
LEAKY_SLOPE = 0.01
#: Layers that the depthwise variant keeps dense: conv1_1 .. conv5_2.
NUM_TRUNK_LAYERS = 17
#: Layers up to the encoding (conv1_1 .. conv4_7).
NUM_ENCODER_LAYERS = 15
#: hand3d initialises every bias to this constant.
_BIAS_INIT = 1e-4

Variant = Literal["dense", "depthwise"]


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of PoseNet, named as in hand3d's TensorFlow graph.

    Attributes
    ----------
    name : str
        hand3d's variable scope, e.g. ``"conv4_7"``.
    in_channels, out_channels, kernel_size : int
        Shape of the convolution (stride 1, 'SAME' padding, with bias).
    activation : bool
        Whether a leaky ReLU follows (False only for the score-map outputs).
    pool_after : bool
        Whether a 2x2 max pool (stride 2) follows.
    """

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    activation: bool = True
    pool_after: bool = False


def posenet_layer_specs(num_keypoints: int = 21, refinement_stages: int = 2) -> list[ConvSpec]:
    """List PoseNet's convolutions in execution order.

    Parameters
    ----------
    num_keypoints : int
        Score maps per stage (21 for hands).
    refinement_stages : int
        Refinement stages after the first score-map head (hand3d uses 2).

    Returns
    -------
    list of ConvSpec
        The first :data:`NUM_TRUNK_LAYERS` entries are the trunk and first head
        (conv1_1 .. conv5_2); then 7 layers per refinement stage (conv6_x, conv7_x, ...).

    Examples
    --------
    >>> specs = posenet_layer_specs()
    >>> len(specs), specs[15].name, specs[-1].name
    (31, 'conv5_1', 'conv7_7')
    """
    specs: list[ConvSpec] = []
    channels_in = 3
    # Trunk blocks: (block id, layers, channels, pool after the block).
    for block, (layers, channels, pool) in enumerate(
        [(2, 64, True), (2, 128, True), (4, 256, True), (2, 512, False)], start=1
    ):
        for i in range(layers):
            last = i == layers - 1
            specs.append(ConvSpec(f"conv{block}_{i + 1}", channels_in, channels, 3, pool_after=pool and last))
            channels_in = channels
    for i, channels in enumerate([256, 256, 256, 256, 128], start=3):
        specs.append(ConvSpec(f"conv4_{i}", channels_in, channels, 3))
        channels_in = channels
    encoding = channels_in
    specs.append(ConvSpec("conv5_1", encoding, 512, 1))
    specs.append(ConvSpec("conv5_2", 512, num_keypoints, 1, activation=False))
    for stage in range(refinement_stages):
        block = 6 + stage
        channels_in = num_keypoints + encoding
        for i in range(5):
            specs.append(ConvSpec(f"conv{block}_{i + 1}", channels_in, 128, 7))
            channels_in = 128
        specs.append(ConvSpec(f"conv{block}_6", 128, 128, 1))
        specs.append(ConvSpec(f"conv{block}_7", 128, num_keypoints, 1, activation=False))
    return specs


def _xavier_uniform_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -bound, bound)


class SeparableConv2d(nn.Module):
    """Depthwise separable convolution: ``k x k`` depthwise, then ``1 x 1`` pointwise.

    Like TensorFlow's ``separable_conv2d`` layer: the depthwise step has no bias, the
    pointwise step carries the single bias. Depthwise output channel ``c * K + m`` is the
    ``m``-th filter of input channel ``c`` (``K`` = depth multiplier), as in TensorFlow.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
        Shape; stride 1 and 'SAME' padding.
    depth_multiplier : int
        Depthwise filters per input channel.

    Examples
    --------
    >>> conv = SeparableConv2d(149, 128, 7)
    >>> count_parameters(conv)  # 149*49 depthwise + 149*128 + 128 pointwise
    26501
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, depth_multiplier: int = 1):
        super().__init__()
        if depth_multiplier < 1:
            raise ValueError(f"depth_multiplier must be >= 1, got {depth_multiplier!r}")
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(
            in_channels, mid, kernel_size, padding=kernel_size // 2, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(mid, out_channels, 1)
        k2 = kernel_size * kernel_size
        _xavier_uniform_(self.depthwise.weight, k2, k2 * depth_multiplier)
        _xavier_uniform_(self.pointwise.weight, mid, out_channels)
        _init_bias(self.pointwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the depthwise then the pointwise convolution."""
        return self.pointwise(self.depthwise(x))


def _init_bias(conv: nn.Conv2d) -> None:
    if conv.bias is not None:
        nn.init.constant_(conv.bias, _BIAS_INIT)


def _dense_conv(spec: ConvSpec) -> nn.Conv2d:
    # Stride 1 with an odd kernel: TensorFlow's 'SAME' is symmetric padding of k // 2.
    conv = nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel_size, padding=spec.kernel_size // 2)
    k2 = spec.kernel_size**2
    # hand3d: Xavier (Glorot uniform) filters, constant 1e-4 biases.
    _xavier_uniform_(conv.weight, k2 * spec.in_channels, k2 * spec.out_channels)
    _init_bias(conv)
    return conv


def _run_layers(layers: nn.ModuleDict, x: torch.Tensor, specs: list[ConvSpec]) -> torch.Tensor:
    for spec in specs:
        x = layers[spec.name](x)
        if spec.activation:
            x = F.leaky_relu(x, LEAKY_SLOPE)
        if spec.pool_after:
            x = F.max_pool2d(x, 2, 2)
    return x


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be B x 3 x H x W, got shape {tuple(images.shape)}")
    if images.shape[-1] % 8 or images.shape[-2] % 8:
        raise ValueError(f"image height and width must be multiples of 8, got {tuple(images.shape[-2:])}")


def preprocess_images(
    images: Any, device: torch.device | str | None = None, *, channels_last: bool = False
) -> torch.Tensor:
    """Turn RGB uint8 images into the models' input: ``B x 3 x H x W`` float, ``x / 255 - 0.5``.

    The one input scaling of the package: training, :func:`~keypoint_corrupt.models.predict`
    and the benchmark's :class:`~keypoint_corrupt.models.ModelPredictor` all use it. The
    uint8 images travel to ``device`` first (4x less data than float) and are scaled there.

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor
        ``H x W x 3`` or ``B x H x W x 3`` uint8 (channels last, as images are loaded), or
        an already channels-first ``B x 3 x H x W`` uint8 tensor.
    device : torch.device or str, optional
        Where to put the result (default: where the input is).
    channels_last : bool
        Return the tensor in channels-last memory format (what CUDA convolutions prefer).

    Returns
    -------
    torch.Tensor
        float32 ``B x 3 x H x W`` in [-0.5, 0.5].

    Examples
    --------
    >>> import numpy as np
    >>> x = preprocess_images(np.full((64, 64, 3), 255, np.uint8))
    >>> tuple(x.shape), float(x.max())
    ((1, 3, 64, 64), 0.5)
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {x.dtype}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"images must be H x W x 3 or B x H x W x 3, got shape {tuple(x.shape)}")
    if x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    elif x.shape[1] != 3:
        raise ValueError(f"images must have 3 channels, got shape {tuple(x.shape)}")
    if device is not None:
        x = x.to(device, non_blocking=True)
    x = x.float() / 255.0 - 0.5
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


class PoseNetTrunk(nn.Module):
    """PoseNet's layers up to the encoding (conv1_1 .. conv4_7), as a feature encoder.

    Layer names match :class:`PoseNet` (``layers.conv4_7.weight``), so PoseNet or hand3d
    weights load into it. Output: ``B x 128 x H/8 x W/8``.

    Examples
    --------
    >>> trunk = PoseNetTrunk()
    >>> tuple(trunk(torch.zeros(1, 3, 64, 64)).shape), trunk.out_channels
    ((1, 128, 8, 8), 128)
    """

    def __init__(self) -> None:
        super().__init__()
        self.specs = posenet_layer_specs()[:NUM_ENCODER_LAYERS]
        self.layers = nn.ModuleDict({spec.name: _dense_conv(spec) for spec in self.specs})
        self.out_channels = self.specs[-1].out_channels
        self.stride = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode ``B x 3 x H x W`` images (H, W multiples of 8)."""
        _check_images(images)
        return _run_layers(self.layers, images, self.specs)

    def named_hand3d_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """Yield ``(hand3d layer name, module)`` pairs in execution order."""
        for spec in self.specs:
            yield spec.name, self.layers[spec.name]


class PoseNet(nn.Module):
    """hand3d's PoseNet2D, dense or with depthwise separable refinement stages.

    Parameters
    ----------
    variant : {"dense", "depthwise"}
        ``"dense"`` is hand3d's network; ``"depthwise"`` replaces every layer after the
        first 17 (all refinement layers, 7x7 and 1x1 alike) by a :class:`SeparableConv2d`.
    num_keypoints : int
        Score maps per stage.
    refinement_stages : int
        Refinement stages (hand3d: 2), so ``forward`` returns ``refinement_stages + 1`` maps.
    depth_multiplier : int
        Depth multiplier of the depthwise convolutions (ignored by ``"dense"``).

    Notes
    -----
    Input: ``B x 3 x H x W`` RGB scaled as ``image / 255 - 0.5`` (see
    :func:`keypoint_corrupt.models.preprocess_images`); H and W multiples of 8. Output:
    a list with the score maps of every stage, each ``B x J x H/8 x W/8``; the last is
    the prediction. Layers live in ``self.layers`` under hand3d's names (``conv1_1`` ...),
    so state-dict keys read ``layers.conv4_7.weight``.

    Examples
    --------
    >>> net = PoseNet()
    >>> count_parameters(net)
    17518847
    >>> maps = net(torch.zeros(1, 3, 64, 64))
    >>> len(maps), tuple(maps[-1].shape)
    (3, (1, 21, 8, 8))
    """

    def __init__(
        self,
        variant: Variant = "dense",
        num_keypoints: int = 21,
        refinement_stages: int = 2,
        depth_multiplier: int = 1,
    ):
        super().__init__()
        if variant not in ("dense", "depthwise"):
            raise ValueError(f"variant must be 'dense' or 'depthwise', got {variant!r}")
        for name, value in (("num_keypoints", num_keypoints), ("depth_multiplier", depth_multiplier)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if (
            isinstance(refinement_stages, bool)
            or not isinstance(refinement_stages, int)
            or refinement_stages < 0
        ):
            raise ValueError(f"refinement_stages must be a non-negative integer, got {refinement_stages!r}")
        self.variant: Variant = variant
        self.num_keypoints = num_keypoints
        self.refinement_stages = refinement_stages
        self.depth_multiplier = depth_multiplier
        self.specs = posenet_layer_specs(num_keypoints, refinement_stages)
        layers: dict[str, nn.Module] = {}
        for index, spec in enumerate(self.specs):
            if variant == "depthwise" and index >= NUM_TRUNK_LAYERS:
                layers[spec.name] = SeparableConv2d(
                    spec.in_channels, spec.out_channels, spec.kernel_size, depth_multiplier
                )
            else:
                layers[spec.name] = _dense_conv(spec)
        self.layers = nn.ModuleDict(layers)

    @property
    def model_name(self) -> str:
        """Registry name: ``"posenet-dense"`` or ``"posenet-depthwise"``."""
        return f"posenet-{self.variant}"

    @property
    def stride(self) -> int:
        """Input pixels per score-map cell (three 2x2 pools)."""
        return 8

    @property
    def encoding_channels(self) -> int:
        """Channels of the encoding (conv4_7's output)."""
        return self.specs[NUM_ENCODER_LAYERS - 1].out_channels

    def config(self) -> dict[str, Any]:
        """Return the constructor arguments stored in checkpoints."""
        return {
            "variant": self.variant,
            "num_keypoints": self.num_keypoints,
            "refinement_stages": self.refinement_stages,
            "depth_multiplier": self.depth_multiplier,
        }

    def _run(self, x: torch.Tensor, specs: list[ConvSpec]) -> torch.Tensor:
        return _run_layers(self.layers, x, specs)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Run the trunk (conv1_1 .. conv4_7): ``B x 128 x H/8 x W/8`` encoding."""
        _check_images(images)
        return self._run(images, self.specs[:NUM_ENCODER_LAYERS])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Score maps of every stage, each ``B x J x H/8 x W/8``; the last is the output."""
        encoding = self.encode(images)
        maps = [self._run(encoding, self.specs[NUM_ENCODER_LAYERS:NUM_TRUNK_LAYERS])]
        for stage in range(self.refinement_stages):
            start = NUM_TRUNK_LAYERS + 7 * stage
            # hand3d concatenates [previous score map, encoding] in that order (matters for weights).
            x = torch.cat([maps[-1], encoding], dim=1)
            maps.append(self._run(x, self.specs[start : start + 7]))
        return maps

    def named_hand3d_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """Yield ``(hand3d layer name, module)`` pairs in execution order."""
        for spec in self.specs:
            yield spec.name, self.layers[spec.name]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Count a model's parameters (weights and biases).

    Parameters
    ----------
    model : torch.nn.Module
        Any module.
    trainable_only : bool
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int

    Examples
    --------
    >>> count_parameters(PoseNet("depthwise"))
    9461769
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
