"""albumentations transforms over the functional core.

Each class is a thin :class:`albumentations.ImageOnlyTransform`: it validates its arguments
at construction, stores every ``__init__`` argument under the same attribute name (which is
what albumentations 2.0.8's serialisation reads) and defines no pydantic ``InitSchema``
(which would silently replace unlisted arguments by their defaults). Keypoints pass through
untouched, so none is ever dropped, moved or altered.

Every class also offers :meth:`CorruptionTransform.corrupt`, the same corruption with an
explicit generator, used by the dataset layer for per-image seeding.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Sequence
from typing import Any, ClassVar

import albumentations as A
import numpy as np

from keypoint_corrupt import functional as F
from keypoint_corrupt._validation import check_float, check_image, check_int, check_keypoints

__all__ = [
    "CorruptionTransform",
    "DefocusBlur",
    "GaussianNoise",
    "HorizontalMotionBlur",
    "KeypointOcclusion",
    "SaltPepperNoise",
]


class CorruptionTransform(A.ImageOnlyTransform):
    """Base class: an image corruption that also runs outside albumentations.

    Subclasses implement :meth:`corrupt`. ``p`` defaults to 1.0: a corruption configuration
    is applied to every image it is given.
    """

    family: ClassVar[str] = ""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=check_float(p, "p", low=0.0, high=1.0))

    def corrupt(
        self,
        image: np.ndarray,
        *,
        keypoints: Any = None,
        visibility: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Apply the corruption with an explicit generator.

        Returns the new image and a dict of what was drawn (for occlusion, the painted pixel
        ``box`` and the drawn ``center``, both ``None`` when no keypoint is visible).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__name__}({args})"


class DefocusBlur(CorruptionTransform):
    """Defocused lens: ``k x k`` Gaussian blur, bit-identical to ``cv2.GaussianBlur(img, (k, k), 0)``.

    Parameters
    ----------
    kernel_size : int
        Odd kernel size (reference: 7, 13, 21).
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import numpy as np
    >>> DefocusBlur(7)(image=np.zeros((32, 32, 3), np.uint8))["image"].shape
    (32, 32, 3)
    """

    family: ClassVar[str] = "defocus"

    def __init__(self, kernel_size: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        k = check_int(kernel_size, "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd for a Gaussian (defocus) blur, got {kernel_size!r}")
        self.kernel_size = k

    def corrupt(self, image, *, keypoints=None, visibility=None, rng=None):  # noqa: D102
        return F.defocus_blur(image, self.kernel_size), {}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:  # noqa: D102
        return F.defocus_blur(img, self.kernel_size)


class HorizontalMotionBlur(CorruptionTransform):
    """Horizontal motion blur over ``k`` pixels, even ``k`` included, never shifted vertically.

    See :func:`keypoint_corrupt.functional.motion_blur` for the half-pixel offset of even kernels.

    Parameters
    ----------
    kernel_size : int
        Motion length in pixels (reference: 15, 30, 45).
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import numpy as np
    >>> HorizontalMotionBlur(30)(image=np.zeros((32, 64), np.uint8))["image"].shape
    (32, 64)
    """

    family: ClassVar[str] = "motion"

    def __init__(self, kernel_size: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.kernel_size = check_int(kernel_size, "kernel_size")

    def corrupt(self, image, *, keypoints=None, visibility=None, rng=None):  # noqa: D102
        return F.motion_blur(image, self.kernel_size), {}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:  # noqa: D102
        return F.motion_blur(img, self.kernel_size)


class KeypointOcclusion(CorruptionTransform):
    """A filled square over the hand, placed from the keypoints in the pipeline's data.

    The region of interest is the box of the visible keypoints grown by ``margin``; the
    square covers ``area`` of it and is centred at a uniform point inside it (see
    :func:`keypoint_corrupt.functional.occlude`). Inside ``A.Compose`` the keypoints are read
    after any earlier geometric transform. Keypoints are never dropped or moved.

    Visibility: name the keypoint label field that holds visibility flags with
    ``visibility_label`` (e.g. ``"visibility"`` with
    ``A.KeypointParams(format="xy", label_fields=["visibility"])``); non-zero means visible.
    Without it every keypoint in the data counts as visible, so COCO-style invisible
    ``(0, 0)`` points would stretch the ROI. Called outside Compose, pass the flags under the
    same keyword. When no keypoint is visible the image is left unchanged.

    Parameters
    ----------
    area : float
        Square area as a fraction of the ROI area, in (0, 1] (reference: 0.10, 0.20, 0.30).
    margin : float, default 0.15
        ROI growth per side, as a fraction of its width and height.
    fill : float or sequence of float, default 0
        Fill value in the image's scale (0-255 for uint8, 0-1 for float32).
    visibility_label : str, optional
        Name of the keypoint label field holding visibility flags.
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import albumentations as A, numpy as np
    >>> pipe = A.Compose([KeypointOcclusion(0.2)], keypoint_params=A.KeypointParams(format="xy"), seed=0)
    >>> out = pipe(image=np.full((64, 64, 3), 255, np.uint8), keypoints=[(10, 10), (50, 40)])
    >>> bool((out["image"] == 0).any()), len(out["keypoints"])
    (True, 2)
    """

    family: ClassVar[str] = "occlusion"

    def __init__(
        self,
        area: float,
        margin: float = 0.15,
        fill: float | Sequence[float] = 0,
        visibility_label: str | None = None,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.area = check_float(area, "area", low=0.0, high=1.0, low_inclusive=False)
        self.margin = check_float(margin, "margin", low=0.0)
        fill_arr = np.asarray(fill, dtype=np.float64).reshape(-1)
        if fill_arr.size not in (1, 3, 4) or not np.isfinite(fill_arr).all() or (fill_arr < 0).any():
            raise ValueError(f"fill must be a non-negative scalar or one value per channel, got {fill!r}")
        self.fill = float(fill_arr[0]) if np.ndim(fill) == 0 else tuple(float(f) for f in fill_arr)
        if visibility_label is not None and not isinstance(visibility_label, str):
            raise TypeError(f"visibility_label must be a str or None, got {visibility_label!r}")
        self.visibility_label = visibility_label

    @property
    def targets_as_params(self) -> list[str]:  # noqa: D102
        return ["keypoints"]

    def corrupt(self, image, *, keypoints=None, visibility=None, rng=None):  # noqa: D102
        if keypoints is None:
            raise ValueError("KeypointOcclusion needs keypoints, got keypoints=None")
        check_image(image)
        roi = F.keypoint_roi(keypoints, image.shape, margin=self.margin, visibility=visibility)
        if roi is None:  # nothing visible: unchanged copy
            return F.fill_box(image, None, self.fill), {"box": None, "center": None}
        center = F.occlusion_center(roi, rng)
        box = F.occluder_box(roi, self.area, center, image.shape)
        return F.fill_box(image, box, self.fill), {"box": box, "center": center}

    def _visibility_from_data(self, data: dict[str, Any], n: int) -> np.ndarray | None:
        if self.visibility_label is None:
            return None
        processor = self.processors.get("keypoints") if self.processors else None
        label_fields = list(processor.params.label_fields or []) if processor is not None else []
        if self.visibility_label in label_fields:
            # Inside Compose, label fields are the last columns of the keypoint array, in order.
            kps = np.asarray(data["keypoints"])
            column = kps.shape[1] - len(label_fields) + label_fields.index(self.visibility_label)
            return kps[:, column]
        if self.visibility_label in data:
            return np.asarray(data[self.visibility_label])
        raise ValueError(
            f"visibility_label={self.visibility_label!r} is neither a keypoint label field "
            f"({label_fields}) nor a keyword of the call"
        )

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:  # noqa: D102
        keypoints = check_keypoints(data["keypoints"])
        visibility = self._visibility_from_data(data, len(keypoints))
        roi = F.keypoint_roi(keypoints, params["shape"], margin=self.margin, visibility=visibility)
        if roi is None:
            return {"box": None}
        center = F.occlusion_center(roi, self.random_generator)
        return {"box": F.occluder_box(roi, self.area, center, params["shape"])}

    def apply(self, img: np.ndarray, box: Any = None, **params: Any) -> np.ndarray:  # noqa: D102
        return F.fill_box(img, box, self.fill)


class _NoiseTransform(CorruptionTransform):
    """Shared seeding for noise transforms.

    albumentations' ``Compose(seed=s)`` gives every child an identically seeded generator,
    so two noise transforms in one pipeline would draw identical noise. Each call therefore
    seeds its noise from the transform's own generator *and* a CRC of the image it receives:
    seeded pipelines stay reproducible, and a second noise transform (which sees the first
    one's output) draws fresh noise.
    """

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image = data["image"] if "image" in data else data["images"][0]
        fingerprint = zlib.crc32(np.ascontiguousarray(image).data)
        draw = int(self.random_generator.integers(0, 2**63))
        return {"noise_seed": (draw, fingerprint, zlib.crc32(self.family.encode()))}

    def apply(self, img: np.ndarray, noise_seed: Any = None, **params: Any) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(list(noise_seed)))
        return self.corrupt(img, rng=rng)[0]


class GaussianNoise(_NoiseTransform):
    """Additive Gaussian noise on the [0, 1] scale, clipped (skimage ``random_noise`` "gaussian").

    Parameters
    ----------
    var : float, default 0.01
        Variance on the [0, 1] scale.
    mean : float, default 0.0
        Mean on the [0, 1] scale.
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import numpy as np
    >>> t = GaussianNoise(var=0.01)
    >>> t.set_random_seed(0)
    >>> t(image=np.full((8, 8), 128, np.uint8))["image"].dtype
    dtype('uint8')
    """

    family: ClassVar[str] = "noise-gaussian"

    def __init__(self, var: float = 0.01, mean: float = 0.0, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.var = check_float(var, "var", low=0.0)
        self.mean = check_float(mean, "mean", low=-1.0, high=1.0)

    def corrupt(self, image, *, keypoints=None, visibility=None, rng=None):  # noqa: D102
        return F.gaussian_noise(image, var=self.var, mean=self.mean, rng=rng), {}


class SaltPepperNoise(_NoiseTransform):
    """Salt and pepper noise, per channel value by default (coloured pixels, skimage "s&p").

    Parameters
    ----------
    amount : float, default 0.05
        Probability that a value (or pixel, with ``per_channel=False``) is replaced.
    salt_vs_pepper : float, default 0.5
        Fraction of replaced values set to full scale.
    per_channel : bool, default True
        Independent per channel value (True) or one mask for all channels (False).
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import numpy as np
    >>> t = SaltPepperNoise(amount=0.05)
    >>> t.set_random_seed(0)
    >>> t(image=np.full((8, 8, 3), 128, np.uint8))["image"].shape
    (8, 8, 3)
    """

    family: ClassVar[str] = "noise-saltpepper"

    def __init__(
        self, amount: float = 0.05, salt_vs_pepper: float = 0.5, per_channel: bool = True, p: float = 1.0
    ) -> None:
        super().__init__(p=p)
        self.amount = check_float(amount, "amount", low=0.0, high=1.0)
        self.salt_vs_pepper = check_float(salt_vs_pepper, "salt_vs_pepper", low=0.0, high=1.0)
        if not isinstance(per_channel, (bool, np.bool_)):
            raise TypeError(f"per_channel must be a bool, got {per_channel!r}")
        self.per_channel = bool(per_channel)

    def corrupt(self, image, *, keypoints=None, visibility=None, rng=None):  # noqa: D102
        out = F.salt_pepper_noise(
            image,
            amount=self.amount,
            salt_vs_pepper=self.salt_vs_pepper,
            per_channel=self.per_channel,
            rng=rng,
        )
        return out, {}
