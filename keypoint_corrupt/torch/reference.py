"""The eleven reference configurations as batched torch operations, equal to the CPU path.

``apply_config(name, images, rngs, keypoints, visibility)`` corrupts a ``B x C x H x W`` batch
(uint8, or float32 in [0, 1]; any device) with a registered configuration whose transform is
one of the reference five (:class:`~keypoint_corrupt.transforms.DefocusBlur`,
:class:`~keypoint_corrupt.transforms.HorizontalMotionBlur`,
:class:`~keypoint_corrupt.transforms.KeypointOcclusion`,
:class:`~keypoint_corrupt.transforms.GaussianNoise`,
:class:`~keypoint_corrupt.transforms.SaltPepperNoise`): the eleven of
:data:`~keypoint_corrupt.registry.CONFIGS`, and a user's registration of the same classes.

Sample ``b`` equals :func:`~keypoint_corrupt.registry.apply_corruption` on image ``b`` with a
generator in the same state as ``rngs[b]``:

* the random parts (occluder centres, noise values) are drawn on the host, per sample, by the
  CPU code itself (:func:`~keypoint_corrupt.functional.place_occluder`,
  :func:`~keypoint_corrupt.functional.draw_gaussian_noise`,
  :func:`~keypoint_corrupt.functional.draw_salt_pepper`);
* the image maths runs batched on the tensor's device: the separable Gaussian of
  ``cv2.GaussianBlur`` (uint8: OpenCV's 8-bit fixed-point taps and rounding, emulated with
  integers exactly representable in float32), the horizontal box of ``cv2.blur`` (uint8:
  OpenCV's integer division by the box size), one mask for all occluders, one add or scatter
  for the noise. Borders are OpenCV's ``BORDER_REFLECT_101`` (any size, 1 pixel included).

Every channel is corrupted, a fourth one included, as the CPU kernels do. ``docs/torch.md``
lists the measured agreement (uint8: bit-exact for all eleven).

The two noise configurations also take ``draws="device"``: their dense values then come from a
per-sample ``torch.Generator`` on the images' device (seeded from the sample's NumPy generator),
with the CPU kernels' distributions but not their values (see ``docs/torch.md``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as TF

from keypoint_corrupt import functional as F
from keypoint_corrupt._validation import check_float
from keypoint_corrupt.datasets.subsets import sample_rng
from keypoint_corrupt.registry import get_config
from keypoint_corrupt.torch._batch import RngBatch, check_batch, check_rngs, host_map, reflect101_index
from keypoint_corrupt.torch.imagenet_c.noise import (
    check_draws,
    device_generators,
    device_values,
    salt_and_pepper,
)
from keypoint_corrupt.transforms import (
    CorruptionTransform,
    DefocusBlur,
    GaussianNoise,
    HorizontalMotionBlur,
    KeypointOcclusion,
    SaltPepperNoise,
)

__all__ = [
    "apply_config",
    "check_generators",
    "config_rngs",
    "defocus_blur",
    "defocus_taps",
    "draw_batch",
    "draw_occluders",
    "fill_boxes",
    "gaussian_noise",
    "host_row",
    "motion_blur",
    "salt_pepper_noise",
    "supports_config",
]

#: Fractional bits of OpenCV's fixed-point Gaussian taps for uint8 images.
_FIXED_BITS = 8
#: OpenCV's ``ColumnSum<ushort, uchar>`` divides a box sum by ``(s + delta) * scale >> 23``.
_BOX_SHIFT = 23
_KINDS = {
    DefocusBlur: "defocus",
    HorizontalMotionBlur: "motion",
    KeypointOcclusion: "occlusion",
    GaussianNoise: "noise-gaussian",
    SaltPepperNoise: "noise-saltpepper",
}


# --- borders and separable filters ----------------------------------------------------------------


def _pad(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """Pad 4-D ``x`` along ``dim`` (2 or 3) with reflect-101 borders of any width.

    torch's ``reflect`` mode is reflect-101 but needs pads below the size; wider pads (tiny
    images) gather OpenCV's repeated reflections by index.
    """
    size = int(x.shape[dim])
    if max(before, after) < size and x.is_floating_point():
        return TF.pad(x, (before, after, 0, 0) if dim == 3 else (0, 0, before, after), mode="reflect")
    return x.index_select(dim, reflect101_index(size, before, after, x.device))


@contextlib.contextmanager
def _exact_float32(device: torch.device) -> Iterator[None]:
    """Keep cuDNN convolutions in IEEE float32 while the block runs (TF32 keeps 10 mantissa bits).

    Uses the ``torch.backends.cudnn.conv.fp32_precision`` setting where it exists (never the
    legacy ``allow_tf32`` then: torch refuses a mix of the two), and restores it afterwards.
    """
    if device.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        old = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
        return
    legacy = torch.backends.cudnn.allow_tf32  # pragma: no cover - torch < 2.9
    torch.backends.cudnn.allow_tf32 = False  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = legacy


def _depthwise(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """Correlate every channel of ``1 x N x H x W`` ``x`` with ``taps`` along ``dim`` (reflect-101)."""
    k = int(taps.numel())
    n = int(x.shape[1])
    shape = (1, 1, 1, k) if dim == 3 else (1, 1, k, 1)
    weight = taps.view(shape).expand(n, *shape[1:])
    return TF.conv2d(_pad(x, dim, k // 2, k - 1 - k // 2), weight, groups=n)


def _separable(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Correlate ``1 x N x H x W`` float32 ``x`` with ``taps`` along W, then along H (reflect-101).

    One depthwise convolution per pass (``groups=N``): the planes are the channels of a single
    image, the layout the CPU and cuDNN kernels run fastest.
    """
    with _exact_float32(x.device):
        return _depthwise(_depthwise(x, taps, 3), taps, 2)


def _separable_fixed(x: torch.Tensor, taps: torch.Tensor, split: bool | None = None) -> torch.Tensor:
    """:func:`_separable` for uint8 values and integer taps, exact on any device.

    Every sum is an integer below 2**24, exact in float32, as long as the products are: on the
    CPU they are; on CUDA, where TF32 may round inputs to 11 significant bits, the row sums
    (up to 16 bits) are split into their high and low bytes, both exact in TF32, filtered
    separately and recombined, so the result never depends on a TF32 setting (``split``:
    default on CUDA only).
    """
    rows = _depthwise(x, taps, 3)  # 8-bit values times 9-bit taps: exact in TF32 too
    if not (x.device.type == "cuda" if split is None else split):
        return _depthwise(rows, taps, 2)
    n = int(x.shape[1])
    high = torch.floor(rows * (1.0 / 256.0))
    parts = _depthwise(torch.cat([high, rows - high * 256.0], dim=1), taps, 2)
    return parts[:, :n] * 256.0 + parts[:, n:]


def _planes(images: torch.Tensor) -> torch.Tensor:
    b, c, h, w = images.shape
    return images.reshape(1, b * c, h, w)


# --- defocus ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def defocus_taps(kernel_size: int, fixed_point: bool) -> tuple[float, ...]:
    """Return the 1-D taps of ``cv2.GaussianBlur(image, (k, k), 0)``: float32, or uint8's fixed point.

    For uint8 images OpenCV rounds the double-precision taps to multiples of 1/256 by error
    diffusion from the outer taps inwards, the centre tap taking the remainder so the sum is
    exactly 256; ``fixed_point=True`` returns those integers (as floats).

    Examples
    --------
    >>> defocus_taps(7, True)
    (8.0, 28.0, 56.0, 72.0, 56.0, 28.0, 8.0)
    """
    k = int(kernel_size)
    if not fixed_point:
        return tuple(float(v) for v in cv2.getGaussianKernel(k, 0, ktype=cv2.CV_32F).ravel())
    exact = cv2.getGaussianKernel(k, 0, ktype=cv2.CV_64F).ravel()
    scale = float(1 << _FIXED_BITS)
    taps = [0] * k
    err, total = 0.0, 0
    for i in range(k // 2):
        adjusted = float(exact[i]) * scale + err
        v = round(adjusted)  # half to even, as cvRound
        err = adjusted - v
        taps[i] = taps[k - 1 - i] = v
        total += v
    taps[k // 2] = (1 << _FIXED_BITS) - 2 * total
    return tuple(float(v) for v in taps)


@torch.compiler.disable
def _taps_tensor(k: int, fixed: bool, device: torch.device) -> torch.Tensor:
    return torch.tensor(defocus_taps(k, fixed), dtype=torch.float32, device=device)


def defocus_blur(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """``cv2.GaussianBlur(image, (k, k), 0)`` on every image and channel of the batch.

    uint8 is bit-exact: the fixed-point taps of :func:`defocus_taps`, a row pass and a column
    pass whose sums are integers below 2**24 (exact in float32), and OpenCV's final
    ``(sum + 2**15) >> 16``. float32 uses OpenCV's float32 taps (see ``docs/torch.md`` for the
    measured difference).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 9, 9, dtype=torch.uint8); x[0, 0, 4, 4] = 255
    >>> int(defocus_blur(x, 7)[0, 0, 4, 4])  # (72 * 72 * 255 + 2**15) >> 16
    20
    """
    images = check_batch(images)
    k = int(kernel_size)
    if k < 1 or k % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd and positive for a Gaussian (defocus) blur, got {kernel_size!r}"
        )
    x = _planes(images).to(torch.float32)
    fixed = images.dtype == torch.uint8
    taps = _taps_tensor(k, fixed, images.device)
    out = _separable_fixed(x, taps) if fixed else _separable(x, taps)
    if fixed:
        out = out.add_(32768.0).mul_(1.0 / 65536.0).to(torch.uint8)  # non-negative: truncation is >> 16
    return out.reshape(images.shape)


# --- motion ----------------------------------------------------------------------------------------


def _box_divisor(k: int) -> tuple[int, int]:
    """``(delta, scale)`` of OpenCV's integer division of a uint8 box sum by ``k`` (``k <= 256``)."""
    exact = float(1 << _BOX_SHIFT) / k
    scale = math.floor(exact)
    delta = k // 2
    if exact - scale < 0.5:
        delta += 1
    else:
        scale += 1
    return delta, scale


@functools.lru_cache(maxsize=32)
def _box_table(k: int) -> torch.Tensor:
    """uint8 result of every possible box sum ``0 .. 255 k``, divided as OpenCV divides it."""
    sums = np.arange(255 * k + 1, dtype=np.int64)
    if k <= 256:  # ColumnSum<ushort, uchar>: (s + delta) * scale >> 23
        delta, scale = _box_divisor(k)
        return torch.from_numpy(((sums + delta) * scale >> _BOX_SHIFT).astype(np.uint8))
    # ColumnSum<int, uchar>: float32 product, rounded half to even
    product = sums.astype(np.float32) * np.float32(1.0 / k)
    return torch.from_numpy(np.clip(np.rint(product), 0, 255).astype(np.uint8))


@torch.compiler.disable
def _box_table_on(k: int, device: torch.device) -> torch.Tensor:
    return _box_table(k).to(device)


def _window_sums(x: torch.Tensor, k: int) -> torch.Tensor:
    """Return sums of ``k`` consecutive values along W (``x - k // 2 .. x + k - 1 - k // 2``, reflect-101).

    One cumulative sum: the padding has one more column on the left, whose value cancels in
    the differences, so no zero column has to be prepended.
    """
    w = int(x.shape[3])
    before = k // 2
    sums = _pad(x, 3, before + 1, k - 1 - before).cumsum(3)
    return sums[..., k : k + w] - sums[..., :w]


def motion_blur(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Horizontal box blur over ``k`` pixels, as ``functional.motion_blur`` (``cv2.blur``, anchor ``k // 2``).

    uint8 is bit-exact: exact integer window sums (a cumulative sum along each row, in float32
    while every sum stays below 2**24), mapped through a table of OpenCV's integer division
    (``(s + delta) * scale >> 23`` for ``k <= 256``, a float32 product rounded half to even
    beyond). float32 sums in float64 and rounds once to float32.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 2, 48, dtype=torch.uint8); x[..., 32] = 255
    >>> motion_blur(x, 15)[0, 0, 0, [25, 32, 40]].tolist()
    [17, 17, 0]
    """
    images = check_batch(images)
    k = int(kernel_size)
    if k < 1:
        raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
    if k == 1:
        return images.clone()
    if images.dtype != torch.uint8:
        return (_window_sums(images.to(torch.float64), k) * (1.0 / k)).to(torch.float32)
    exact32 = (int(images.shape[3]) + k + 1) * 255 < 2**24
    sums = _window_sums(images.to(torch.float32 if exact32 else torch.float64), k)
    return _box_table_on(k, images.device)[sums.to(torch.int32)]


# --- occlusion -------------------------------------------------------------------------------------


def host_row(values: Any, b: int) -> np.ndarray:
    """Return sample ``b`` of a batch of keypoints or flags (tensor, array or sequence) as a NumPy array.

    Examples
    --------
    >>> host_row(torch.zeros(2, 3, 2), 1).shape
    (3, 2)
    """
    row = values[b]
    if isinstance(row, torch.Tensor):
        return np.asarray(row.detach().cpu().numpy())
    return np.asarray(row)


def _check_per_sample(values: Any, batch: int, name: str) -> None:
    if values is None:
        return
    try:
        n = len(values)
    except TypeError:
        raise TypeError(
            f"{name} must hold one entry per sample (B x J ...), got {type(values).__name__}"
        ) from None
    if n != batch:
        raise ValueError(f"{name} must hold one entry per sample ({batch}), got {n}")


@torch.compiler.disable
def draw_batch(
    transform: CorruptionTransform,
    shape: Sequence[int],
    rngs: Sequence[np.random.Generator],
    keypoints: Any = None,
    visibility: Any = None,
    instances: Any = None,
) -> list[dict[str, Any]]:
    """Each sample's draws, made on the host by the CPU transform's own code, in the CPU order.

    For sample ``b``: the target instance first (``instances`` given and the corruption
    keypoint-aware: ``transform._target``), then ``transform.draw_params``, from ``rngs[b]``:
    exactly what :meth:`~keypoint_corrupt.transforms.CorruptionTransform.corrupt` draws.

    Parameters
    ----------
    transform : CorruptionTransform
        E.g. a configuration's transform (``get_config(name).build()``).
    shape : sequence of int
        The batch's ``B x C x H x W`` shape.
    rngs : sequence of numpy.random.Generator
        One per sample.
    keypoints, visibility, instances : tensor, array or sequence, optional
        ``B x J x 2`` keypoints, ``B x J`` flags, ``B x J`` instance indices (or one row per sample).

    Returns
    -------
    list of dict
        The drawn parameters per sample (``box`` and ``center``, ``severity`` and ``boxes``, ...;
        ``target_instance`` when ``instances`` were given to a keypoint-aware corruption).

    Examples
    --------
    >>> from keypoint_corrupt.registry import get_config
    >>> t = get_config("occlusion-20").build()
    >>> draw_batch(t, (1, 3, 100, 100), [np.random.default_rng(0)], [[[20, 20], [80, 80]]])[0]["box"]
    (43, 15, 78, 49)
    """
    b, c, h, w = (int(v) for v in shape)
    for values, name in ((keypoints, "keypoints"), (visibility, "visibility"), (instances, "instances")):
        _check_per_sample(values, b, name)
    drawn = []
    for i, gen in enumerate(rngs):
        kps = None if keypoints is None else host_row(keypoints, i)
        given = None if visibility is None else host_row(visibility, i)
        inst = None if instances is None else host_row(instances, i)
        vis, target = transform._target((h, w, c), kps, given, inst, gen)
        params = dict(transform.draw_params((h, w, c), keypoints=kps, visibility=vis, rng=gen))
        params.update(target)
        params.pop("noise_rng", None)
        drawn.append(params)
    return drawn


def draw_occluders(
    shape: Sequence[int],
    keypoints: Any,
    rngs: Sequence[np.random.Generator],
    *,
    area: float,
    margin: float = 0.15,
    visibility: Any = None,
    instances: Any = None,
) -> torch.Tensor:
    """Return the occluder boxes of a batch, placed on the host as ``KeypointOcclusion`` places them.

    Parameters
    ----------
    shape : sequence of int
        The batch's ``B x C x H x W`` shape.
    keypoints : tensor, array or sequence
        ``B x J x 2`` (extra columns ignored), or one ``J x 2`` array per sample.
    rngs : sequence of numpy.random.Generator
        One per sample: the target instance (with ``instances``), then two uniform draws.
    area, margin : float
        As :class:`~keypoint_corrupt.transforms.KeypointOcclusion`'s.
    visibility, instances : tensor, array or sequence, optional
        ``B x J`` flags (default all visible) and instance indices (one target per image).

    Returns
    -------
    torch.Tensor
        ``B x 4`` int64 ``(x0, y0, x1, y1)`` (end exclusive) on the host, ``-1`` where no keypoint
        is visible in the image (nothing is painted there).

    Examples
    --------
    >>> import numpy as np
    >>> draw_occluders((1, 3, 100, 100), [[[20, 20], [80, 80]]], [np.random.default_rng(0)], area=0.2).shape
    torch.Size([1, 4])
    """
    transform = KeypointOcclusion(area, margin=margin)
    return _boxes(draw_batch(transform, shape, rngs, keypoints, visibility, instances))


def _boxes(drawn: Sequence[dict[str, Any]]) -> torch.Tensor:
    """``B x 4`` int64 boxes of drawn occlusion parameters, ``-1`` where none was placed."""
    boxes = np.full((len(drawn), 4), -1, dtype=np.int64)
    for i, params in enumerate(drawn):
        if params.get("box") is not None:
            boxes[i] = params["box"]
    return torch.from_numpy(boxes)


def fill_boxes(images: torch.Tensor, boxes: torch.Tensor, fill: float | Sequence[float] = 0) -> torch.Tensor:
    """Paint ``images[b, :, y0:y1, x0:x1] = fill`` for every sample at once (one mask, no loop).

    ``boxes`` is ``B x 4`` ``(x0, y0, x1, y1)``, end exclusive, or ``B x M x 4`` for up to ``M``
    boxes per sample; a row of ``-1`` paints nothing.
    ``fill`` is in the image's scale (0-255 or 0-1), a scalar or one value per channel, cast
    to the image's dtype as NumPy's assignment casts it (uint8: truncated).

    Examples
    --------
    >>> x = torch.full((1, 1, 4, 4), 9, dtype=torch.uint8)
    >>> int(fill_boxes(x, torch.tensor([[1, 1, 3, 3]])).sum())
    108
    """
    images = check_batch(images)
    b, c, h, w = (int(v) for v in images.shape)
    arr = np.asarray(fill, dtype=np.float64).reshape(-1)
    if arr.size not in (1, c):
        raise ValueError(f"fill must be a scalar or have {c} values (one per channel), got {fill!r}")
    top, kind = (255.0, "uint8") if images.dtype == torch.uint8 else (1.0, "float32")
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > top).any():  # as functional.fill_box
        raise ValueError(f"fill must lie in [0, {top:g}] for a {kind} image, got {fill!r}")
    values = torch.from_numpy(arr.astype(np.uint8 if images.dtype == torch.uint8 else np.float32))
    values = values.to(images.device).view(1, -1, 1, 1)
    boxes = boxes.to(device=images.device, dtype=torch.int64).view(b, -1, 4, 1, 1)
    ys = torch.arange(h, device=images.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=images.device).view(1, 1, 1, w)
    x0, y0, x1, y1 = boxes.unbind(2)
    inside = ((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)).any(dim=1)
    return torch.where(inside.unsqueeze(1), values, images)


# --- noise -----------------------------------------------------------------------------------------


@torch.compiler.disable
def _draw_gaussian(
    images: torch.Tensor, gens: Sequence[np.random.Generator], var: float, mean: float
) -> torch.Tensor:
    b, c, h, w = (int(v) for v in images.shape)
    dtype = np.uint8 if images.dtype == torch.uint8 else np.float32
    draws = np.stack(
        host_map(
            lambda i: F.draw_gaussian_noise((h, w, c), dtype, var=var, mean=mean, rng=gens[i]),
            range(len(gens)),
            gens,
            b * h * w,
        )
    )
    noise = torch.from_numpy(draws)
    if noise.ndim == 1:  # uint8 with var 0: one offset per sample, nothing drawn
        return noise.view(b, 1, 1, 1).to(images.device)
    return noise.to(images.device, non_blocking=True).permute(0, 3, 1, 2)


def gaussian_noise(
    images: torch.Tensor,
    rngs: RngBatch = None,
    *,
    var: float = 0.01,
    mean: float = 0.0,
    draws: str = "host",
) -> torch.Tensor:
    """:func:`~keypoint_corrupt.functional.gaussian_noise` on a batch, bit-exact on uint8 and float32.

    Each sample's noise is drawn on the host by
    :func:`~keypoint_corrupt.functional.draw_gaussian_noise` from its own generator (the CPU
    kernel's draw, in its ``H x W x C`` order); the add and clip run batched on the device.
    With ``draws="device"`` the noise is ``torch`` normals from a per-sample generator on the
    device instead (seeded from ``rngs[b]``): ``clip(x + N(mean, var), 0, 1)``, uint8 rounded
    to the nearest level as the CPU sampler's distribution, not the CPU's values.

    Examples
    --------
    >>> x = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    >>> gaussian_noise(x, rngs=[0, 0]).float().std().item() > 10
    True
    """
    images = check_batch(images)
    return _gaussian(images, check_generators(rngs, int(images.shape[0])), var, mean, draws)


def _gaussian(
    images: torch.Tensor, gens: Sequence[np.random.Generator], var: float, mean: float, draws: str
) -> torch.Tensor:
    """:func:`gaussian_noise` on a checked batch and its generators (apply_config checks them once)."""
    if check_draws(draws) == "device":
        return _gaussian_device(images, gens, var, mean)
    noise = _draw_gaussian(images, gens, var, mean)
    if images.dtype == torch.uint8:
        return (images.to(torch.int16) + noise).clamp_(0, 255).to(torch.uint8)
    return (images + noise).clamp_(0.0, 1.0).contiguous()  # the add follows the noise's H x W x C strides


def _gaussian_device(
    images: torch.Tensor, gens: Sequence[np.random.Generator], var: float, mean: float
) -> torch.Tensor:
    """Device draws: ``x + mean + std z`` clipped; uint8 as ``clip(v + floor(255 (mean + std z) + 1/2))``."""
    std = math.sqrt(check_float(var, "var", low=0.0))
    mean = check_float(mean, "mean", low=-1.0, high=1.0)
    uint8 = images.dtype == torch.uint8
    torch_gens = device_generators(gens, images.device)
    if std == 0.0:  # nothing random: the CPU result itself
        if uint8:
            return (images.to(torch.int16) + int(np.round(255.0 * mean))).clamp_(0, 255).to(torch.uint8)
        return (images + float(np.float32(mean))).clamp_(0.0, 1.0)
    if uint8:
        noise = device_values(
            "normal", images.shape[1:], torch_gens, images.device, mean=255.0 * mean + 0.5, std=255.0 * std
        )
        return noise.add_(images).clamp_(0.0, 255.0).to(torch.uint8)  # truncation of [0, 255]: the floor
    noise = device_values("normal", images.shape[1:], torch_gens, images.device, mean=mean, std=std)
    return noise.add_(images).clamp_(0.0, 1.0)


@torch.compiler.disable
def _draw_salt_pepper(
    images: torch.Tensor,
    gens: Sequence[np.random.Generator],
    amount: float,
    salt_vs_pepper: float,
    per_channel: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices into the ``B x C x H x W`` batch of every salt and every pepper value."""
    _, c, h, w = (int(v) for v in images.shape)
    per_value = per_channel or c == 1
    indices, kinds = [], []
    drawn = host_map(
        lambda i: F.draw_salt_pepper(
            (h, w, c), amount=amount, salt_vs_pepper=salt_vs_pepper, per_channel=per_channel, rng=gens[i]
        ),
        range(len(gens)),
        gens,
        len(gens) * h * w,
    )
    for i, (hits, salt) in enumerate(drawn):
        if per_value:  # positions in H x W x C order -> C x H x W
            pixel, channel = np.divmod(hits, c)
            idx = channel * (h * w) + pixel
        else:  # one position per pixel, every channel
            idx = (np.arange(c, dtype=np.int64)[:, None] * (h * w) + hits[None, :]).ravel()
            salt = np.tile(salt, c)
        indices.append(idx + i * (c * h * w))
        kinds.append(salt)
    flat = torch.from_numpy(np.concatenate(indices)).to(images.device)
    salt_mask = torch.from_numpy(np.concatenate(kinds)).to(images.device)
    return flat[salt_mask], flat[~salt_mask]


def salt_pepper_noise(
    images: torch.Tensor,
    rngs: RngBatch = None,
    *,
    amount: float = 0.05,
    salt_vs_pepper: float = 0.5,
    per_channel: bool = True,
    draws: str = "host",
) -> torch.Tensor:
    """:func:`~keypoint_corrupt.functional.salt_pepper_noise` on a batch, bit-exact.

    Positions are drawn on the host per sample by
    :func:`~keypoint_corrupt.functional.draw_salt_pepper`; all samples' values are then set
    with two scatters on the device. With ``draws="device"`` one ``torch`` uniform ``u`` per
    value (per pixel with ``per_channel=False``) from a per-sample generator on the device
    decides instead: salt where ``u < amount * salt_vs_pepper``, pepper where it is below
    ``amount`` otherwise (the CPU's distribution, not its values).

    Examples
    --------
    >>> x = torch.full((1, 3, 100, 100), 128, dtype=torch.uint8)
    >>> round(float((salt_pepper_noise(x, rngs=[0]) != 128).float().mean()), 2)
    0.05
    """
    images = check_batch(images)
    gens = check_generators(rngs, int(images.shape[0]))
    return _salt_pepper(images, gens, amount, salt_vs_pepper, per_channel, draws)


def _salt_pepper(
    images: torch.Tensor,
    gens: Sequence[np.random.Generator],
    amount: float,
    salt_vs_pepper: float,
    per_channel: bool,
    draws: str,
) -> torch.Tensor:
    """:func:`salt_pepper_noise` on a checked batch and its generators (apply_config checks them once)."""
    if check_draws(draws) == "device":
        return _salt_pepper_device(images, gens, amount, salt_vs_pepper, per_channel)
    salt, pepper = _draw_salt_pepper(images, gens, amount, salt_vs_pepper, per_channel)
    out = images.clone(memory_format=torch.contiguous_format)  # the flat indices are C x H x W
    flat = out.view(-1)
    flat[salt] = 255 if images.dtype == torch.uint8 else 1.0
    flat[pepper] = 0
    return out


def _salt_pepper_device(
    images: torch.Tensor,
    gens: Sequence[np.random.Generator],
    amount: float,
    salt_vs_pepper: float,
    per_channel: bool,
) -> torch.Tensor:
    """Device draws: one uniform per value (or pixel), cut at ``amount * salt_vs_pepper`` and ``amount``."""
    amount = check_float(amount, "amount", low=0.0, high=1.0)
    salt_vs_pepper = check_float(salt_vs_pepper, "salt_vs_pepper", low=0.0, high=1.0)
    if not isinstance(per_channel, (bool, np.bool_)):
        raise TypeError(f"per_channel must be a bool, got {per_channel!r}")
    _, c, h, w = (int(v) for v in images.shape)
    shape = (c if per_channel or c == 1 else 1, h, w)
    u = device_values("uniform", shape, device_generators(gens, images.device), images.device)
    full = 255.0 if images.dtype == torch.uint8 else 1.0
    return salt_and_pepper(images, u, amount, amount * salt_vs_pepper, full)


def check_generators(rngs: RngBatch, batch: int) -> list[np.random.Generator]:
    """:func:`~keypoint_corrupt.torch._batch.check_rngs`, refusing RandomStates as the CPU path does.

    The reference configurations and the suite transforms draw from ``numpy.random.Generator``
    (``rng`` of :func:`~keypoint_corrupt.registry.apply_corruption`); only the ImageNet-C kernels
    called directly also take imagecorruptions' ``RandomState``.

    Examples
    --------
    >>> len(check_generators(3, 2))
    2
    """
    gens = check_rngs(rngs, batch)
    for g in gens:
        if not isinstance(g, np.random.Generator):
            raise TypeError(
                f"rngs items must be numpy.random.Generator here (as apply_corruption's rng), got {g!r}"
            )
    return [g for g in gens if isinstance(g, np.random.Generator)]


# --- configurations --------------------------------------------------------------------------------


@torch.compiler.disable
def _resolve(name: str) -> tuple[str, dict[str, Any]]:
    """``(kind, parameters)`` of a configuration the torch path runs, else a ValueError naming it."""
    cfg = get_config(name)  # unknown names: the registry's message, listing the valid ones
    kind = _KINDS.get(cfg.transform)
    if kind is None:
        raise ValueError(
            f"configuration {name!r} uses {cfg.transform.__name__}, which keypoint_corrupt.torch.reference "
            f"does not run (it runs {', '.join(t.__name__ for t in _KINDS)}; suite configurations "
            "run through keypoint_corrupt.torch.Corruption)"
        )
    t = cfg._shared
    names = {
        "defocus": ("kernel_size",),
        "motion": ("kernel_size",),
        "occlusion": ("area", "margin", "fill"),
        "noise-gaussian": ("var", "mean"),
        "noise-saltpepper": ("amount", "salt_vs_pepper", "per_channel"),
    }[kind]
    return kind, {n: getattr(t, n) for n in names}


def supports_config(name: str) -> bool:
    """Whether :func:`apply_config` runs ``name`` (a registered reference-style configuration).

    Examples
    --------
    >>> supports_config("motion-30"), supports_config("imagenet-c.fog-3")
    (True, False)
    """
    try:
        _resolve(name)
    except ValueError:
        return False
    return True


def apply_config(
    name: str,
    images: torch.Tensor,
    rngs: RngBatch = None,
    keypoints: Any = None,
    visibility: Any = None,
    instances: Any = None,
    *,
    draws: str = "host",
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Corrupt a batch with a reference configuration: sample ``b`` equals the CPU path's.

    Parameters
    ----------
    name : str
        ``defocus-7`` ... ``noise-saltpepper`` (or a user configuration of the same transforms).
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    rngs : int, sequence or None
        Per-sample NumPy generators (see :func:`~keypoint_corrupt.torch._batch.check_rngs`);
        :func:`config_rngs` gives the dataset's. Blurs draw nothing.
    keypoints : tensor, array or sequence, optional
        ``B x J x 2`` in pixels, or one ``J x 2`` array per sample; occlusion needs them.
    visibility : tensor, array or sequence, optional
        ``B x J`` flags (non-zero visible); default all visible.
    instances : tensor, array or sequence, optional
        ``B x J`` instance (person) index of every keypoint: occlusion then targets one instance
        per image, drawn first, as the CPU path does (ignored by the other configurations).
    draws : {"host", "device"}, default "host"
        For ``noise-gaussian`` and ``noise-saltpepper``: ``"host"`` draws NumPy's values (equal
        to the CPU path), ``"device"`` torch's from a per-sample generator on the images' device
        seeded from ``rngs[b]`` (same distribution, faster, not the CPU's values, and CPU and
        CUDA differ). The other configurations ignore it (their draws are a few scalars).

    Returns
    -------
    images : torch.Tensor
        A new batch, same shape, dtype and device.
    info : dict
        ``box``: ``B x 4`` int64 on the images' device, the occluder ``(x0, y0, x1, y1)`` (end
        exclusive), ``-1`` where nothing was painted and for the other configurations (as
        :class:`~keypoint_corrupt.datasets.CorruptedDataset`'s ``box``); with ``instances``,
        occlusion also reports ``target_instance``, one index (or None) per sample.

    Examples
    --------
    >>> x = torch.full((2, 3, 64, 64), 200, dtype=torch.uint8)
    >>> kps = torch.tensor([[[10.0, 10.0], [50.0, 50.0]]] * 2)
    >>> out, info = apply_config("occlusion-30", x, rngs=[0, 1], keypoints=kps)
    >>> info["box"].shape, bool((out == 0).any())
    (torch.Size([2, 4]), True)
    """
    images = check_batch(images)
    check_draws(draws)
    kind, params = _resolve(name)
    b = int(images.shape[0])
    no_box = torch.full((b, 4), -1, dtype=torch.int64, device=images.device)
    if kind in ("defocus", "motion"):
        if rngs is not None:
            check_rngs(rngs, b)
        blur = defocus_blur if kind == "defocus" else motion_blur
        return blur(images, params["kernel_size"]), {"box": no_box}
    gens = check_generators(rngs, b)
    if kind == "occlusion":
        if keypoints is None:
            raise ValueError("occlusion needs keypoints (B x J x 2), got keypoints=None")
        drawn = draw_batch(get_config(name)._shared, images.shape, gens, keypoints, visibility, instances)
        boxes = _boxes(drawn).to(images.device)
        info: dict[str, Any] = {"box": boxes}
        if instances is not None:
            info["target_instance"] = [d.get("target_instance") for d in drawn]
        return fill_boxes(images, boxes, params["fill"]), info
    if kind == "noise-gaussian":
        return _gaussian(images, gens, params["var"], params["mean"], draws), {"box": no_box}
    p = params
    out = _salt_pepper(images, gens, p["amount"], p["salt_vs_pepper"], p["per_channel"], draws)
    return out, {"box": no_box}


def config_rngs(seed: int, ids: Sequence[str], config: str) -> list[np.random.Generator]:
    """Return the per-sample generators of a dataset: ``sample_rng(seed, id, config)`` for each id.

    A batch corrupted with these equals the items of
    :class:`~keypoint_corrupt.datasets.CorruptedDataset` (same seed) and the materialised
    images, sample by sample.

    Examples
    --------
    >>> a, b = config_rngs(0, ["x", "y"], "occlusion-10")
    >>> a.random() == sample_rng(0, "x", "occlusion-30").random()
    True
    """
    if isinstance(ids, str):
        raise TypeError(f"ids must be a sequence of sample ids, got the string {ids!r}")
    return [sample_rng(seed, sid, config) for sid in ids]
