"""albumentations transforms over the functional core.

Each class is a thin :class:`albumentations.ImageOnlyTransform`: it validates its arguments
at construction, stores every ``__init__`` argument under the same attribute name (which is
what albumentations 2.0.8's serialisation reads) and defines no pydantic ``InitSchema``
(which would silently replace unlisted arguments by their defaults). Keypoints pass through
untouched, so none is ever dropped or altered; the one exception is
``ImageNetC("elastic_transform")``, which moves them with the image content (unless
``move_keypoints=False``) and still never drops one.

:class:`ImageNetC` and :class:`PoseBench` are the published suites' corruptions (one class
per suite, the corruption by name), at a fixed severity or at one drawn per image.

One implementation per corruption: a class draws its random parameters in
:meth:`CorruptionTransform.draw_params` (from the image shape, the keypoints, their
visibility and a generator) and applies the corruption in ``apply`` from those parameters
only. albumentations calls the two through ``get_params_dependent_on_data`` and ``apply``;
:meth:`CorruptionTransform.corrupt`, defined once in the base class, is the same two steps
with an explicit generator, used by the dataset layer for per-image seeding.

Inside a torch DataLoader worker, the albumentations path re-seeds each transform once per
worker (:meth:`CorruptionTransform._sync_worker_rng`): albumentations 2.0.8 would otherwise
give every worker the same random stream.
"""

from __future__ import annotations

import inspect
import numbers
import os
import random
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeAlias, TypedDict

import albumentations as A
import numpy as np
import numpy.typing as npt
from albumentations.core.type_definitions import Targets

from keypoint_corrupt import functional as F
from keypoint_corrupt._validation import (
    ImageArray,
    KeypointsLike,
    Seed,
    VisibilityLike,
    as_generator,
    check_float,
    check_image,
    check_int,
    check_visibility,
)
from keypoint_corrupt.functional.imagenet_c.elastic import move_keypoints as _move_keypoints
from keypoint_corrupt.functional.occlusion import PixelBox, Point

#: The noise source of a noise transform (``None``: fresh OS entropy, not reproducible).
NoiseSource: TypeAlias = np.random.Generator | Sequence[int] | None
#: A suite transform's ``severity``: one level, or an inclusive ``(low, high)`` range drawn per image.
SeveritySpec: TypeAlias = int | tuple[int, int]

__all__ = [
    "CorruptionInfo",
    "CorruptionTransform",
    "DefocusBlur",
    "DrawnParams",
    "GaussianNoise",
    "HorizontalMotionBlur",
    "ImageNetC",
    "KeypointOcclusion",
    "PoseBench",
    "SaltPepperNoise",
]


#: Mixed into every worker re-seed, so the worker streams are unrelated to any user seed.
_WORKER_SALT = zlib.crc32(b"keypoint_corrupt.worker")


def _worker_context() -> tuple[int, int] | None:
    """``(pid, worker id)`` inside a torch DataLoader worker, else ``None``.

    torch is never imported here: when the program has not loaded it, there are no workers.
    """
    data = sys.modules.get("torch.utils.data")
    get_worker_info = getattr(data, "get_worker_info", None)
    if get_worker_info is None:
        return None
    info = get_worker_info()
    if info is None:
        return None
    return os.getpid(), int(info.id)


def _check_label(label: object, name: str) -> str | None:
    if label is not None and not isinstance(label, str):
        raise TypeError(f"{name} must be a str or None, got {label!r}")
    return label


class CorruptionInfo(TypedDict, total=False):
    """What :meth:`CorruptionTransform.corrupt` reports it drew for one image.

    Occlusion reports the painted pixel ``box`` ``(x0, y0, x1, y1)`` (end exclusive) and the
    drawn ``center`` ``(x, y)``, both ``None`` when no keypoint is visible or all visible
    keypoints lie outside the image (the image is then unchanged). :class:`ImageNetC` and
    :class:`PoseBench` report the ``severity`` applied (drawn, for a range); PoseBench's mask
    also its painted ``boxes``, and ``ImageNetC("elastic_transform")`` given keypoints (with
    ``move_keypoints=True``) the moved ``keypoints``, a float64 copy of the given rows with
    x, y moved. The other corruptions report nothing (an empty dict).

    Given ``instances`` (each keypoint's person), the keypoint-aware ones (occlusion,
    PoseBench's mask) also report ``target_instance``: the one instance they were placed on
    (see :func:`~keypoint_corrupt.functional.choose_instance`), or ``None`` when none was usable.

    Examples
    --------
    >>> info: CorruptionInfo = {"box": (1, 2, 5, 6), "center": (3.0, 4.0)}
    >>> info["box"]
    (1, 2, 5, 6)
    """

    box: PixelBox | None
    center: Point | None
    severity: int
    boxes: list[PixelBox]
    keypoints: npt.NDArray[np.float64]
    target_instance: int | None


class DrawnParams(CorruptionInfo, total=False):
    """Everything :meth:`CorruptionTransform.draw_params` drew: keyword arguments of ``apply``.

    Besides the reported :class:`CorruptionInfo`, noise transforms carry their noise source
    ``noise_rng``: in :meth:`~CorruptionTransform.corrupt` the caller's generator itself (its
    draws are the noise), inside albumentations the integer entropy of a fresh generator per
    image (so every image of one call and a replay get the same noise, and a replay's
    parameters stay JSON).

    Examples
    --------
    >>> drawn: DrawnParams = {"noise_rng": np.random.default_rng(0)}
    >>> sorted(drawn)
    ['noise_rng']
    """

    noise_rng: NoiseSource


class CorruptionTransform(A.ImageOnlyTransform):
    """Base class: an image corruption that also runs outside albumentations.

    A subclass defines, once:

    * ``__init__``: validate each argument and store it under its own name;
    * ``apply(img, **params)``: the corruption, computed from ``self`` and the drawn
      parameters only (albumentations adds ``shape`` and others to ``params``: ignore them);
    * :meth:`draw_params`, only if the corruption is random or reads keypoints;
    * ``family``, a short name for listings (and the noise seeding).

    :meth:`corrupt` and the albumentations call are then both "draw, then apply".
    ``p`` defaults to 1.0: a corruption configuration is applied to every image it is given.

    Examples
    --------
    >>> import numpy as np
    >>> t = DefocusBlur(3)
    >>> out, info = t.corrupt(np.zeros((8, 8), np.uint8), rng=0)
    >>> out.shape, info
    ((8, 8), {})
    """

    family: ClassVar[str] = ""
    # Where the generators were last set: ``None`` in the main process, else (pid, worker id).
    _rng_context: tuple[int, int] | None = None
    # Whether the generators come from a seed or explicit state (not from OS entropy).
    _rng_seeded: bool = False

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=check_float(p, "p", low=0.0, high=1.0))

    def set_random_seed(self, seed: int | None) -> None:
        """Seed the transform's generators (albumentations' hook; ``Compose(seed=)`` calls it).

        Called inside a DataLoader worker (e.g. from a ``worker_init_fn`` or per item), the
        seed is used as given: the worker re-seeding of :meth:`_sync_worker_rng` is skipped.
        """
        super().set_random_seed(seed)
        self._rng_seeded = seed is not None
        self._rng_context = _worker_context()

    def set_random_state(self, random_generator: np.random.Generator, py_random: random.Random) -> None:
        """Install explicit generators (albumentations' hook); used as given, as a seed is."""
        super().set_random_state(random_generator, py_random)
        self._rng_seeded = True
        self._rng_context = _worker_context()

    def _sync_worker_rng(self) -> None:
        """Re-seed once per torch DataLoader worker, so that workers draw different streams.

        albumentations 2.0.8 copies the main process's generators into every worker, so each
        worker would repeat the others' draws. On its first call in a worker (a new process or
        worker id), the transform re-seeds its numpy and Python generators from
        ``SeedSequence([draw, worker_id, salt])``, where ``draw`` is one draw from the copied
        generator: a seeded pipeline stays reproducible (same seed, same number of workers,
        same outputs) and its workers differ. Unseeded transforms also mix in fresh OS
        entropy. Outside workers nothing happens, so num_workers=0 is unchanged; a seed set
        inside the worker (``set_random_seed``/``set_random_state``) is kept.
        """
        context = _worker_context()
        if context is None or context == self._rng_context:
            return
        words = [int(self.random_generator.integers(0, 2**63)), context[1], _WORKER_SALT]
        if not self._rng_seeded:
            words.append(int.from_bytes(os.urandom(16), "little"))
        np_seq, py_seq = np.random.SeedSequence(words).spawn(2)
        # The base class's setter: our override would mark the state as explicitly seeded.
        super().set_random_state(
            np.random.default_rng(np_seq), random.Random(int(py_seq.generate_state(1, np.uint64)[0]))
        )
        self._rng_context = context

    def __call__(self, *args: Any, force_apply: bool = False, **kwargs: Any) -> Any:
        """Albumentations' call, after :meth:`_sync_worker_rng` (a no-op outside workers)."""
        self._sync_worker_rng()
        return super().__call__(*args, force_apply=force_apply, **kwargs)

    def draw_params(
        self,
        image_shape: tuple[int, ...],
        *,
        keypoints: KeypointsLike | None,
        visibility: VisibilityLike | None,
        rng: np.random.Generator,
    ) -> DrawnParams:
        """Draw the parameters of one application: the only place a transform uses randomness.

        Parameters
        ----------
        image_shape : tuple of int
            Shape of the image to corrupt.
        keypoints : array-like or None
            (N, 2+) keypoints in pixels (inside ``A.Compose``, after earlier geometric
            transforms).
        visibility : array-like or None
            (N,) visibility flags; ``None`` means all visible.
        rng : numpy.random.Generator
            The generator to draw from.

        Returns
        -------
        DrawnParams
            Keyword arguments for ``apply``; the default draws nothing (``{}``).
        """
        return {}

    def apply(self, img: ImageArray, **params: Any) -> ImageArray:
        """Apply the corruption to ``img`` with the drawn ``params`` (albumentations' hook)."""
        raise NotImplementedError

    def corrupt(
        self,
        image: ImageArray,
        *,
        keypoints: KeypointsLike | None = None,
        visibility: VisibilityLike | None = None,
        instances: npt.ArrayLike | None = None,
        rng: Seed = None,
    ) -> tuple[ImageArray, CorruptionInfo]:
        """Apply the corruption with an explicit generator: draw with ``rng``, then apply.

        Parameters
        ----------
        image : numpy.ndarray
            uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
        keypoints : array-like, optional
            (N, 2+) keypoints in pixels (required by keypoint-aware corruptions).
        visibility : array-like, optional
            (N,) visibility flags; default all visible.
        instances : array-like of int, optional
            (N,) each keypoint's instance (person) index, for an image with several: a
            keypoint-aware corruption then targets one of them (drawn first from ``rng``) and
            reports it as ``target_instance``. Ignored by the other corruptions.
        rng : numpy.random.Generator or int or None
            Source of randomness (validated even by corruptions that draw nothing).

        Returns
        -------
        image : numpy.ndarray
            A new array of the same shape and dtype.
        info : CorruptionInfo
            What was drawn (see :class:`CorruptionInfo`: occlusion's ``box`` and ``center``,
            the suites' ``severity``, ``boxes`` and moved ``keypoints``; otherwise empty).

        Examples
        --------
        >>> import numpy as np
        >>> t = KeypointOcclusion(0.25, margin=0.0)
        >>> out, info = t.corrupt(np.full((100, 100), 9, np.uint8), keypoints=[(20, 20), (80, 80)], rng=0)
        >>> sorted(info), int((out == 0).sum()) == 30 * 30
        (['box', 'center'], True)
        """
        check_image(image)
        gen = as_generator(rng)
        visibility, target = self._target(image.shape, keypoints, visibility, instances, gen)
        drawn = self.draw_params(image.shape, keypoints=keypoints, visibility=visibility, rng=gen)
        drawn.update(target)
        out, moved = self._apply_with_keypoints(image, keypoints, drawn)
        drawn.pop("noise_rng", None)  # a noise source, not a reportable draw
        if moved is not None:
            drawn["keypoints"] = moved
        return out, drawn

    def _apply_with_keypoints(
        self, image: ImageArray, keypoints: KeypointsLike | None, drawn: DrawnParams
    ) -> tuple[ImageArray, npt.NDArray[np.float64] | None]:
        """:meth:`corrupt`'s apply step: the image, and the keypoints if the transform moves them."""
        return self.apply(image, **drawn), None

    @property
    def targets_instance(self) -> bool:
        """Whether the corruption is placed from keypoints on one target instance (occlusion, mask)."""
        return False

    def _target(
        self,
        image_shape: tuple[int, ...],
        keypoints: KeypointsLike | None,
        visibility: VisibilityLike | None,
        instances: npt.ArrayLike | None,
        rng: np.random.Generator,
    ) -> tuple[VisibilityLike | None, CorruptionInfo]:
        """Choose the target instance: the visibility that places the corruption, and the report.

        Without ``instances``, or for a corruption that does not target one, the visibility is
        returned as given and the report is empty; otherwise only the target's keypoints stay
        visible and the report is ``{"target_instance": index or None}``.
        """
        if instances is None or not self.targets_instance:
            return visibility, {}
        if keypoints is None:
            raise ValueError(f"instances were given without keypoints to {type(self).__name__}")
        target = F.choose_instance(instances, keypoints, image_shape, visibility=visibility, rng=rng)
        if target is None:
            return visibility, {"target_instance": None}
        own = np.asarray(instances).reshape(-1) == target
        return check_visibility(visibility, len(own)) & own, {"target_instance": target}

    def _visibility_from_data(self, data: dict[str, Any]) -> VisibilityLike | None:
        """Visibility flags of the transform's ``visibility_label``, if it has one, else ``None``."""
        return self._label_from_data(data, "visibility_label")

    def _label_from_data(self, data: dict[str, Any], attribute: str) -> npt.NDArray[Any] | None:
        """Per-keypoint values of the label named by ``attribute``, if the transform has one.

        Inside ``A.Compose`` the label is a keypoint label field (the last columns of the
        keypoint array, in order); outside it, a keyword of the call. Without a label the
        result is ``None`` (every keypoint visible; one instance).
        """
        label = getattr(self, attribute, None)
        if label is None:
            return None
        processor = self.processors.get("keypoints") if self.processors else None
        label_fields = list(processor.params.label_fields or []) if processor is not None else []
        if label in label_fields:
            if data.get("keypoints") is None:
                return None
            kps = np.asarray(data["keypoints"])
            column = kps.shape[1] - len(label_fields) + label_fields.index(label)
            return kps[:, column]
        if label in data:
            return np.asarray(data[label])
        raise ValueError(
            f"{attribute}={label!r} is neither a keypoint label field ({label_fields}) "
            "nor a keyword of the call"
        )

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Albumentations' hook: :meth:`draw_params` with the transform's own generator."""
        rng, shape, keypoints = self.random_generator, params["shape"], data.get("keypoints")
        instances = self._label_from_data(data, "instance_label")
        if instances is not None:
            instances = np.asarray(instances).astype(np.int64)
        visibility, target = self._target(shape, keypoints, self._visibility_from_data(data), instances, rng)
        drawn = self.draw_params(shape, keypoints=keypoints, visibility=visibility, rng=rng)
        drawn.update(target)
        return dict(drawn)

    def __repr__(self) -> str:
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__name__}({args})"


class DefocusBlur(CorruptionTransform):
    """Defocused lens: ``k x k`` Gaussian blur, bit-identical to ``cv2.GaussianBlur(img, (k, k), 0)``.

    See :func:`keypoint_corrupt.functional.defocus_blur`.

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

    def apply(self, img: ImageArray, **params: Any) -> ImageArray:  # noqa: D102
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

    def apply(self, img: ImageArray, **params: Any) -> ImageArray:  # noqa: D102
        return F.motion_blur(img, self.kernel_size)


class KeypointOcclusion(CorruptionTransform):
    """A filled square over the hand, placed from the keypoints in the pipeline's data.

    The region of interest is the box of the visible keypoints grown by ``margin``; the
    square covers ``area`` of it and is centred at a uniform point inside it (see
    :func:`keypoint_corrupt.functional.place_occluder`, shared with
    :func:`keypoint_corrupt.functional.occlude`). Inside ``A.Compose`` the keypoints are read
    after any earlier geometric transform. Keypoints are never dropped or moved.

    Visibility: name the keypoint label field that holds visibility flags with
    ``visibility_label`` (e.g. ``"visibility"`` with
    ``A.KeypointParams(format="xy", label_fields=["visibility"])``); non-zero means visible.
    Without it every keypoint in the data counts as visible, so COCO-style invisible
    ``(0, 0)`` points would stretch the ROI. Called outside Compose, pass the flags under the
    same keyword. When no keypoint is visible, or the visible ones all lie outside the image,
    the image is left unchanged and ``box`` and ``center`` are ``None``; a single visible
    keypoint gets a minimum ROI (see :func:`keypoint_corrupt.functional.keypoint_roi`).

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
    instance_label : str, optional
        Name of the keypoint label field holding each keypoint's instance (person) index, for
        images with several people: the occluder is then placed on one of them, drawn per
        image (:func:`~keypoint_corrupt.functional.choose_instance`) and reported as
        ``target_instance``. Without it all keypoints form one instance.
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
        instance_label: str | None = None,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.area = check_float(area, "area", low=0.0, high=1.0, low_inclusive=False)
        self.margin = check_float(margin, "margin", low=0.0)
        fill_arr = np.asarray(fill, dtype=np.float64).reshape(-1)
        if fill_arr.size not in (1, 3, 4) or not np.isfinite(fill_arr).all() or (fill_arr < 0).any():
            raise ValueError(f"fill must be a non-negative scalar or one value per channel, got {fill!r}")
        self.fill: float | tuple[float, ...] = (
            float(fill_arr[0]) if np.ndim(fill) == 0 else tuple(float(f) for f in fill_arr)
        )
        self.visibility_label = _check_label(visibility_label, "visibility_label")
        self.instance_label = _check_label(instance_label, "instance_label")

    @property
    def targets_as_params(self) -> list[str]:  # noqa: D102
        return ["keypoints"]

    @property
    def targets_instance(self) -> bool:  # noqa: D102
        return True

    def draw_params(  # noqa: D102
        self,
        image_shape: tuple[int, ...],
        *,
        keypoints: KeypointsLike | None,
        visibility: VisibilityLike | None,
        rng: np.random.Generator,
    ) -> DrawnParams:
        if keypoints is None:
            raise ValueError("KeypointOcclusion needs keypoints, got keypoints=None")
        occluder = F.place_occluder(
            keypoints, image_shape, self.area, margin=self.margin, visibility=visibility, rng=rng
        )
        if occluder is None:  # nothing visible: the image is left unchanged
            return {"box": None, "center": None}
        return {"box": occluder.box, "center": occluder.center}

    def apply(self, img: ImageArray, box: PixelBox | None = None, **params: Any) -> ImageArray:  # noqa: D102
        return F.fill_box(img, box, self.fill)


class _NoiseTransform(CorruptionTransform):
    """Shared seeding for noise transforms: the noise source is the drawn parameter.

    In :meth:`corrupt` the noise is drawn from the caller's generator itself. Inside
    albumentations, ``Compose(seed=s)`` gives every child an identically seeded generator,
    so two noise transforms in one pipeline would draw identical noise. Each call therefore
    seeds its noise from the transform's own generator *and* a CRC of the image it receives:
    seeded pipelines stay reproducible, and a second noise transform (which sees the first
    one's output) draws fresh noise.
    """

    def draw_params(
        self,
        image_shape: tuple[int, ...],
        *,
        keypoints: KeypointsLike | None,
        visibility: VisibilityLike | None,
        rng: np.random.Generator,
    ) -> DrawnParams:
        return {"noise_rng": rng}

    def _call_seed(self, data: dict[str, Any]) -> tuple[int, int, int]:
        """Return the seed of one call: a draw of the own generator, a CRC of the image, the family."""
        image = data["image"] if "image" in data else data["images"][0]
        fingerprint = zlib.crc32(np.ascontiguousarray(image).data)
        draw = int(self.random_generator.integers(0, 2**63))
        # Plain ints (not a SeedSequence): albumentations' replay and applied params stay JSON.
        return (draw, fingerprint, zlib.crc32(self.family.encode()))

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"noise_rng": self._call_seed(data)}


class GaussianNoise(_NoiseTransform):
    """Additive Gaussian noise on the [0, 1] scale, clipped (skimage ``random_noise`` "gaussian").

    See :func:`keypoint_corrupt.functional.gaussian_noise`.

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

    def apply(self, img: ImageArray, noise_rng: NoiseSource = None, **params: Any) -> ImageArray:  # noqa: D102
        return F.gaussian_noise(img, var=self.var, mean=self.mean, rng=np.random.default_rng(noise_rng))


class SaltPepperNoise(_NoiseTransform):
    """Salt and pepper noise, per channel value by default (coloured pixels, skimage "s&p").

    See :func:`keypoint_corrupt.functional.salt_pepper_noise`.

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

    def apply(self, img: ImageArray, noise_rng: NoiseSource = None, **params: Any) -> ImageArray:  # noqa: D102
        return F.salt_pepper_noise(
            img,
            amount=self.amount,
            salt_vs_pepper=self.salt_vs_pepper,
            per_channel=self.per_channel,
            rng=np.random.default_rng(noise_rng),
        )


# --- The published suites: ImageNet-C and PoseBench ------------------------------------------------

#: Names of the fields of ``PARAMS[corruption][severity - 1]`` (ImageNet-C's and PoseBench's
#: tables share these names: PoseBench's rows for the corruptions they share are ImageNet-C's).
_PARAM_FIELDS: dict[str, tuple[str, ...]] = {
    "gaussian_noise": ("scale",),
    "shot_noise": ("photons",),
    "impulse_noise": ("amount",),
    "speckle_noise": ("scale",),
    "defocus_blur": ("radius", "alias_sigma"),
    "glass_blur": ("sigma", "max_delta", "iterations"),
    "motion_blur": ("radius", "sigma"),
    "zoom_blur": ("zooms",),
    "gaussian_blur": ("sigma",),
    "snow": ("loc", "scale", "zoom", "threshold", "blur_radius", "blur_sigma", "blend"),
    "frost": ("image_weight", "frost_weight"),
    "fog": ("strength", "decay"),
    "brightness": ("value_shift",),
    "contrast": ("factor",),
    "elastic_transform": ("alpha",),
    "pixelate": ("factor",),
    "jpeg_compression": ("quality",),
    "spatter": ("loc", "scale", "sigma", "threshold", "intensity", "mode"),
    "saturate": ("factor", "offset"),
    "color_quant": ("bits",),
    "darkness": ("gamma", "level", "photons", "read_sigma"),
    "mask": ("squares", "side"),
}


def _check_severity_spec(severity: object, levels: int = 5) -> SeveritySpec:
    """``severity`` as an int in 1..levels or an inclusive ``(low, high)`` tuple, else raise."""
    if isinstance(severity, (tuple, list)):
        pair = tuple(severity)
        if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in pair):
            raise TypeError(
                f"severity must be an int in 1..{levels} or a (low, high) pair of ints, got {severity!r}"
            )
        low, high = int(pair[0]), int(pair[1])
        if not 1 <= low <= high <= levels:
            raise ValueError(f"severity range must have 1 <= low <= high <= {levels}, got {severity!r}")
        return (low, high)
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
        raise TypeError(
            f"severity must be an int in 1..{levels} or a (low, high) pair of ints, got {severity!r}"
        )
    if not 1 <= int(severity) <= levels:
        raise ValueError(f"severity must be in 1..{levels}, got {severity!r}")
    return int(severity)


class _SuiteTransform(_NoiseTransform):
    """A corruption of a published suite, by name, at a fixed severity or one drawn per image.

    Randomness: one generator per application draws the severity first (uniform integer in
    the range; nothing for a fixed severity), then whatever the corruption draws. In
    :meth:`corrupt` that generator is the caller's; inside albumentations it is
    ``default_rng(seed)`` with the per-call integer seed of the noise transforms (a draw of
    the transform's generator, a CRC of the image, the family), which is what ``apply``
    receives (``noise_rng``), so replays stay JSON. ``apply`` rebuilds the generator from the
    seed and repeats the severity draw, so that the corruption continues the same stream in
    both paths.
    """

    #: The suite's corruptions by name: ``function(image, severity, rng) -> image``.
    _KERNELS: ClassVar[Mapping[str, Callable[..., ImageArray]]] = {}
    #: The suite's corruptions' severity parameters, ``PARAMS[name][severity - 1]``.
    _PARAMS: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    #: The suite's name in messages.
    _SUITE: ClassVar[str] = ""

    def __init__(self, corruption: str, severity: SeveritySpec = 1, p: float = 1.0) -> None:
        super().__init__(p=p)
        if not isinstance(corruption, str) or corruption not in self._KERNELS:
            raise ValueError(
                f"corruption must be one of the {len(self._KERNELS)} {self._SUITE} corruptions "
                f"({', '.join(self._KERNELS)}), got {corruption!r}"
            )
        self.corruption = corruption
        self.severity = _check_severity_spec(severity)

    @classmethod
    def severity_parameters(cls, corruption: str, severity: int) -> dict[str, Any]:
        """Return the corruption's parameters at ``severity``, by name (from the suite's ``PARAMS``).

        Examples
        --------
        >>> ImageNetC.severity_parameters("defocus_blur", 2)
        {'radius': 4, 'alias_sigma': 0.5}
        """
        if corruption not in cls._PARAMS:
            raise ValueError(f"corruption must be one of {', '.join(cls._PARAMS)}, got {corruption!r}")
        if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
            raise TypeError(f"severity must be an int in 1..5, got {severity!r}")
        if not 1 <= severity <= 5:
            raise ValueError(f"severity must be in 1..5, got {severity!r}")
        values = cls._PARAMS[corruption][int(severity) - 1]
        fields = _PARAM_FIELDS.get(corruption, ("value",))
        if len(fields) == 1 or not isinstance(values, tuple):
            return {fields[0]: values}
        return dict(zip(fields, values, strict=True))

    def _draw_severity(self, rng: np.random.Generator) -> int:
        if isinstance(self.severity, tuple):
            low, high = self.severity
            return int(rng.integers(low, high + 1))
        return self.severity

    def draw_params(
        self,
        image_shape: tuple[int, ...],
        *,
        keypoints: KeypointsLike | None,
        visibility: VisibilityLike | None,
        rng: np.random.Generator,
    ) -> DrawnParams:
        return {"severity": self._draw_severity(rng), "noise_rng": rng}

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Albumentations' hook: :meth:`draw_params` from ``default_rng(seed)`` of the call's seed."""
        seed = self._call_seed(data)
        drawn = self.draw_params(
            params["shape"],
            keypoints=data.get("keypoints"),
            visibility=self._visibility_from_data(data),
            rng=np.random.default_rng(seed),
        )
        drawn["noise_rng"] = seed
        return dict(drawn)

    def _kernel_rng(self, source: NoiseSource) -> np.random.Generator:
        """Return the corruption's generator: the caller's as it is, or one rebuilt from a call's seed."""
        if isinstance(source, np.random.Generator):
            return source  # corrupt(): already past the severity draw
        gen = np.random.default_rng(source)
        self._draw_severity(gen)  # the draw get_params_dependent_on_data made: continue after it
        return gen

    def apply(
        self, img: ImageArray, severity: int = 1, noise_rng: NoiseSource = None, **params: Any
    ) -> ImageArray:
        return self._KERNELS[self.corruption](img, severity, rng=self._kernel_rng(noise_rng))


class ImageNetC(_SuiteTransform):
    """An ImageNet-C corruption (Hendrycks and Dietterich) by name, keypoint-aware.

    One of the 15 standard corruptions of COCO-C, MPII-C and OCHuman-C or the 4 extras (see
    :mod:`keypoint_corrupt.functional.imagenet_c`), at a fixed severity or at one drawn per
    image, uniformly, from an inclusive ``(low, high)`` range.

    Keypoints: ``elastic_transform`` moves the image content, and with ``move_keypoints=True``
    (the default: what training pipelines need) the keypoints move with it, by the same
    displacement field (:func:`~keypoint_corrupt.functional.imagenet_c.move_keypoints`), inside
    ``A.Compose(..., keypoint_params=...)`` and in :meth:`corrupt` (reported as
    ``info["keypoints"]``). ``move_keypoints=False`` leaves them where they were, as COCO-C's
    published protocol does (the registry's ``imagenet-c.*`` configurations). The transform
    never drops a keypoint; ``A.Compose``'s own ``remove_invisible=True`` (its default) removes
    any that the warp pushed off the image. Masks and bounding boxes are not warped. The other
    18 corruptions leave keypoints untouched.

    Parameters
    ----------
    corruption : str
        One of ``functional.imagenet_c.STANDARD`` or ``EXTRA`` (e.g. ``"gaussian_noise"``).
    severity : int or (int, int), default 1
        1 to 5, or an inclusive range drawn per image.
    move_keypoints : bool, default True
        Whether ``elastic_transform`` moves the keypoints (no effect on the other corruptions).
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import albumentations as A, numpy as np
    >>> img = np.full((64, 64, 3), 128, np.uint8)
    >>> out = ImageNetC("contrast", severity=(3, 5))(image=img)["image"]
    >>> out.shape
    (64, 64, 3)
    >>> kp = A.KeypointParams(format="xy")
    >>> pipe = A.Compose([ImageNetC("elastic_transform", 5)], keypoint_params=kp, seed=0)
    >>> moved = pipe(image=img, keypoints=np.array([(20.0, 30.0)]))["keypoints"]
    >>> moved.shape, bool(np.abs(moved - (20.0, 30.0)).max() > 0)
    ((1, 2), True)
    >>> ImageNetC("elastic_transform", 2).corrupt(img, keypoints=[(20.0, 30.0)], rng=0)[1]["keypoints"].shape
    (1, 2)
    """

    family: ClassVar[str] = "imagenet-c"
    _KERNELS = F.imagenet_c.CORRUPTIONS
    _PARAMS = F.imagenet_c.PARAMS
    _SUITE = "ImageNet-C"
    # keypoints are a target, so that elastic_transform can move them (the others return them as given)
    _targets = (Targets.IMAGE, Targets.VOLUME, Targets.KEYPOINTS)

    def __init__(
        self, corruption: str, severity: SeveritySpec = 1, move_keypoints: bool = True, p: float = 1.0
    ) -> None:
        super().__init__(corruption, severity, p=p)
        if not isinstance(move_keypoints, (bool, np.bool_)):
            raise TypeError(f"move_keypoints must be a bool, got {move_keypoints!r}")
        self.move_keypoints = bool(move_keypoints)

    @property
    def targets(self) -> dict[str, Callable[..., Any]]:  # noqa: D102
        return {**super().targets, "keypoints": self.apply_to_keypoints}

    @property
    def moves_keypoints(self) -> bool:
        """Whether this transform moves keypoints (``elastic_transform`` with ``move_keypoints``)."""
        return self.move_keypoints and self.corruption == "elastic_transform"

    def apply_to_keypoints(
        self,
        keypoints: Any,
        severity: int = 1,
        noise_rng: NoiseSource = None,
        shape: tuple[int, ...] = (),
        **params: Any,
    ) -> Any:
        """Albumentations' keypoint hook: moved by the elastic field, else returned as given."""
        if not self.moves_keypoints:
            return keypoints
        field = F.imagenet_c.elastic_field(shape, severity, self._kernel_rng(noise_rng))
        return _move_keypoints(keypoints, field)  # float64, every column kept, x and y moved

    def _apply_with_keypoints(
        self, image: ImageArray, keypoints: KeypointsLike | None, drawn: DrawnParams
    ) -> tuple[ImageArray, npt.NDArray[np.float64] | None]:
        if keypoints is None or not self.moves_keypoints:
            return super()._apply_with_keypoints(image, keypoints, drawn)
        rng = self._kernel_rng(drawn.get("noise_rng"))
        out, moved = F.imagenet_c.elastic_transform_with_keypoints(image, keypoints, drawn["severity"], rng)
        return out, moved


class PoseBench(_SuiteTransform):
    """A PoseBench corruption (Ma et al. 2024) by name; its mask is placed from the keypoints.

    One of the 10 corruptions of :mod:`keypoint_corrupt.functional.posebench`, at a fixed
    severity or at one drawn per image, uniformly, from an inclusive ``(low, high)`` range.
    ``mask`` paints black squares centred on randomly chosen visible keypoints of the
    pipeline's data (after earlier geometric transforms; over the whole image when there are
    none, see :func:`~keypoint_corrupt.functional.posebench.draw_mask`) and reports them as
    ``boxes``. Keypoints are never moved or dropped.

    Visibility: as for :class:`KeypointOcclusion`, name the keypoint label field holding the
    flags with ``visibility_label`` (non-zero means visible); without it every keypoint in the
    data counts as visible.

    Parameters
    ----------
    corruption : str
        One of ``functional.posebench.NAMES`` (e.g. ``"mask"``, ``"darkness"``).
    severity : int or (int, int), default 1
        1 to 5, or an inclusive range drawn per image.
    visibility_label : str, optional
        Name of the keypoint label field holding visibility flags (used by ``mask``).
    instance_label : str, optional
        Name of the keypoint label field holding instance indices (used by ``mask``: its
        squares go on one person, as for :class:`KeypointOcclusion`).
    p : float, default 1.0
        Probability of applying the transform.

    Examples
    --------
    >>> import albumentations as A, numpy as np
    >>> img = np.full((100, 100, 3), 200, np.uint8)
    >>> out, info = PoseBench("mask", 5).corrupt(img, keypoints=[(50, 50)], rng=0)
    >>> info["severity"], int(out[50, 50, 0])
    (5, 0)
    >>> pipe = A.Compose([PoseBench("color_quant", (1, 5))], seed=0)
    >>> pipe(image=img)["image"].dtype
    dtype('uint8')
    """

    family: ClassVar[str] = "posebench"
    _KERNELS = F.posebench.CORRUPTIONS
    _PARAMS = F.posebench.PARAMS
    _SUITE = "PoseBench"

    def __init__(
        self,
        corruption: str,
        severity: SeveritySpec = 1,
        visibility_label: str | None = None,
        instance_label: str | None = None,
        p: float = 1.0,
    ) -> None:
        super().__init__(corruption, severity, p=p)
        self.visibility_label = _check_label(visibility_label, "visibility_label")
        self.instance_label = _check_label(instance_label, "instance_label")

    @property
    def targets_instance(self) -> bool:  # noqa: D102
        return self.corruption == "mask"

    def draw_params(  # noqa: D102
        self,
        image_shape: tuple[int, ...],
        *,
        keypoints: KeypointsLike | None,
        visibility: VisibilityLike | None,
        rng: np.random.Generator,
    ) -> DrawnParams:
        drawn = super().draw_params(image_shape, keypoints=keypoints, visibility=visibility, rng=rng)
        if self.corruption == "mask":
            boxes = F.posebench.draw_mask(
                image_shape, drawn["severity"], rng, keypoints=keypoints, visibility=visibility
            )
            drawn["boxes"] = [(int(x0), int(y0), int(x1), int(y1)) for x0, y0, x1, y1 in boxes]
        return drawn

    def apply(  # noqa: D102
        self,
        img: ImageArray,
        severity: int = 1,
        noise_rng: NoiseSource = None,
        boxes: Sequence[PixelBox] = (),
        **params: Any,
    ) -> ImageArray:
        if self.corruption == "mask":
            return F.posebench.apply_mask(img, boxes)
        return super().apply(img, severity, noise_rng)
