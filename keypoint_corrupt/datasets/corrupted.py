"""S-train* / S-val*: a base dataset plus deterministic corrupted subsets, as a map-style dataset."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import albumentations as A
import numpy as np

from keypoint_corrupt._validation import check_float, check_int
from keypoint_corrupt.datasets.images import load_image
from keypoint_corrupt.datasets.sample import Sample
from keypoint_corrupt.datasets.subsets import sample_rng, select_subset, transform_seed
from keypoint_corrupt.functional.imagenet_c._textures import configured_frost_folder
from keypoint_corrupt.registry import CONFIGS, apply_corruption, get_config
from keypoint_corrupt.transforms import ImageNetC

__all__ = ["CLEAN", "MODES", "CorruptedDataset", "PlanEntry", "check_runnable", "keypoints_after"]

#: The ``config`` value of an uncorrupted item.
CLEAN = "clean"
MODES = ("subset", "append", "replace")
_NO_BOX = (-1, -1, -1, -1)


class PlanEntry(NamedTuple):
    """One dataset item: which base sample, under which configuration (or ``"clean"``)."""

    base_index: int
    config: str


class CorruptedDataset:
    """A base dataset with each configuration's deterministic corrupted subset.

    For every configuration, :func:`~keypoint_corrupt.datasets.select_subset` draws
    ``round(fraction * len(base))`` samples (independently per configuration), and those
    samples are corrupted with :func:`~keypoint_corrupt.apply_corruption` and a generator
    from :func:`~keypoint_corrupt.datasets.sample_rng`. Everything is a pure function of
    ``seed``, the sample ids and the configuration names, so any item can be rebuilt alone,
    in any process, in any order: ``num_workers=2`` in a torch DataLoader yields exactly
    what ``num_workers=0`` yields, and every image gets its own noise.

    Parameters
    ----------
    base : sequence of Sample
        E.g. :class:`~keypoint_corrupt.datasets.STB` or
        :class:`~keypoint_corrupt.datasets.CocoKeypoints`; ids must be unique.
    configs : str or sequence of str, default CONFIGS
        Configuration names (all eleven by default).
    fraction : float, default 0.2
        Share of the base corrupted per configuration, in (0, 1].
    seed : int, default 0
        Seed of the subset draws, the corruption noise and the transform's randomness.
    mode : {"subset", "append", "replace"}, default "subset"
        ``subset``: only the corrupted selections, configuration after configuration (the
        per-configuration S-val*). ``append``: every base sample clean, then the corrupted
        copies (S-train*). ``replace``: exactly one configuration; the base's size and order
        are kept and the selected samples are corrupted in place.
    transform : callable, optional
        Applied after the corruption, e.g. an albumentations pipeline (see Notes).

    Notes
    -----
    Each item is a dict: ``image`` (RGB uint8 HxWx3 unless ``transform`` changes it),
    ``keypoints`` (float32 (J, 2); the labelled ones where a corruption that moves the content
    put them, see :func:`keypoints_after`), ``visibility`` (bool (J,)), ``id``, ``config`` (``"clean"``
    or a name), ``base_index`` and ``box``: the occluder ``(x0, y0, x1, y1)`` (pixels
    ``image[y0:y1, x0:x1]`` of the untransformed image) for occlusion, ``(-1, -1, -1, -1)``
    otherwise (an array, not ``None``, so torch's default collate accepts it), and
    ``target_instance``: on a whole image of several people (a base sample with
    :attr:`~keypoint_corrupt.datasets.Sample.instances`), the index of the one person a
    keypoint-aware corruption (occlusion, PoseBench's mask) was placed on, else ``-1``.

    ``transform``:

    * An ``A.Compose`` must have ``keypoint_params=A.KeypointParams(format="xy",
      remove_invisible=False)``. albumentations' default ``remove_invisible=True`` would
      silently drop keypoints that leave the image, breaking the (J, 2) layout, so it is
      refused with a ValueError rather than repaired. Any ``label_fields`` receive the
      visibility flags (e.g. for ``KeypointOcclusion(visibility_label=...)``).
    * A single albumentations transform is wrapped in such a Compose for you.
    * Any other callable is called as ``transform(image=..., keypoints=..., visibility=...)``
      and must return a dict with ``image`` (``keypoints`` / ``visibility`` optional).

    After the transform, a keypoint stays visible only if it was visible and lies inside the
    output image. Before each call, ``transform.set_random_seed(s)`` is called (when the
    transform has it) with ``s = transform_seed(seed, id, config)``: albumentations 2.0.8
    seeds every DataLoader worker identically, so the dataset reseeds per item instead and
    augmentations are reproducible and independent of the worker layout. The dataset owns
    the transform's random state.

    Examples
    --------
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> val = STB(bundled_sample_root(), "val")
    >>> ds = CorruptedDataset(val, ["defocus-7", "occlusion-20"], mode="subset")
    >>> len(ds), [e.config for e in ds.plan]
    (4, ['defocus-7', 'defocus-7', 'occlusion-20', 'occlusion-20'])
    >>> item = ds[2]
    >>> item["image"].shape, item["keypoints"].dtype, item["config"], bool(item["box"][0] >= 0)
    ((480, 640, 3), dtype('float32'), 'occlusion-20', True)
    """

    def __init__(
        self,
        base: Sequence[Sample],
        configs: str | Sequence[str] = CONFIGS,
        fraction: float = 0.2,
        seed: int = 0,
        mode: str = "subset",
        transform: Callable[..., Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}; got {mode!r}")
        names = (configs,) if isinstance(configs, str) else tuple(configs)
        if not names:
            raise ValueError("configs must name at least one configuration")
        for name in names:
            get_config(name)  # unknown names fail here, listing the valid ones
        if len(set(names)) != len(names):
            raise ValueError(f"configs must not repeat a configuration, got {names}")
        if mode == "replace" and len(names) != 1:
            raise ValueError(f"mode='replace' takes exactly one configuration, got {len(names)}: {names}")
        self.base = base
        self.configs = names
        self.fraction = check_float(fraction, "fraction", low=0.0, high=1.0, low_inclusive=False)
        self.seed = check_int(seed, "seed", minimum=0)
        self.mode = mode
        self._transform, self._label_fields = _prepare_transform(transform)
        self.transform = transform

        ids = getattr(base, "ids", None)
        ids = list(ids) if ids is not None else [base[i].id for i in range(len(base))]
        if len(ids) != len(base):
            raise ValueError(f"base.ids has {len(ids)} entries for {len(base)} samples")
        index = {sid: i for i, sid in enumerate(ids)}
        if len(index) != len(ids):
            raise ValueError("base sample ids must be unique (subset draws and noise are keyed by id)")
        #: Configuration -> selected base indices, in base order.
        self.selections: dict[str, tuple[int, ...]] = {
            name: tuple(index[sid] for sid in select_subset(ids, name, self.fraction, self.seed))
            for name in names
        }
        corrupted = [PlanEntry(i, name) for name in names for i in self.selections[name]]
        if mode == "subset":
            plan = corrupted
        elif mode == "append":
            plan = [PlanEntry(i, CLEAN) for i in range(len(ids))] + corrupted
        else:
            chosen = set(self.selections[names[0]])
            plan = [PlanEntry(i, names[0] if i in chosen else CLEAN) for i in range(len(ids))]
        #: Every item as (base index, configuration), in dataset order.
        self.plan: tuple[PlanEntry, ...] = tuple(plan)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if isinstance(index, slice):
            raise TypeError("index must be an integer, got slice (use the plan to list items)")
        try:
            entry = self.plan[index]
        except TypeError:
            raise TypeError(f"index must be an integer, got {type(index).__name__}") from None
        sample = self.base[entry.base_index]
        return self._item(sample, entry.base_index, load_image(sample), entry.config)

    def group_by_source(self) -> dict[int, list[tuple[int, str]]]:
        """Dataset positions grouped by base sample: ``{base_index: [(position, config), ...]}``.

        Base indices are in ascending order, so a writer can decode each source image once
        and produce all its items with :meth:`render`.
        """
        groups: dict[int, list[tuple[int, str]]] = {}
        for pos, entry in enumerate(self.plan):
            groups.setdefault(entry.base_index, []).append((pos, entry.config))
        return dict(sorted(groups.items()))

    def source_image(self, base_index: int) -> np.ndarray:
        """Decode base sample ``base_index``'s image (``OSError`` naming the file when it cannot)."""
        return load_image(self.base[base_index])

    def render(
        self, base_index: int, configs: Sequence[str] | None = None, *, image: np.ndarray | None = None
    ) -> dict[str, dict[str, Any]]:
        """Build several items of one base sample from a single decode of its image.

        Parameters
        ----------
        base_index : int
            Index into ``base``.
        configs : sequence of str, optional
            ``"clean"`` and/or configuration names; default: those the plan holds for this
            sample. Each item equals the dataset's own item for that (sample, config).
        image : numpy.ndarray, optional
            The sample's image (:meth:`source_image`), when the caller has read it already (a
            writer that tells a source it cannot read from a corruption that fails); default:
            read here.

        Returns
        -------
        dict
            ``{config: item}``.
        """
        if configs is None:
            configs = [e.config for e in self.plan if e.base_index == base_index]
        for name in configs:
            if name != CLEAN:
                get_config(name)
        sample = self.base[base_index]
        if image is None:
            image = self.source_image(base_index)
        copy = self._transform is not None and len(configs) > 1  # a transform may write in place
        return {
            name: self._item(sample, base_index, image.copy() if copy else image, name) for name in configs
        }

    def _item(self, sample: Sample, base_index: int, image: np.ndarray, config: str) -> dict[str, Any]:
        keypoints, visibility = sample.keypoints, sample.visibility
        box, target = None, None
        if config != CLEAN:
            rng = sample_rng(self.seed, sample.id, config)
            image, info = apply_corruption(
                config, image, keypoints, visibility=visibility, instances=sample.instances, rng=rng
            )
            box, target = info.get("box"), info.get("target_instance")
            keypoints = keypoints_after(info, keypoints, visibility)
        out_kps = keypoints.astype(np.float32)
        out_vis = visibility.copy()
        if self._transform is not None:
            image, out_kps, out_vis = self._apply_transform(sample, config, image, keypoints, visibility)
        return {
            "image": image,
            "keypoints": out_kps,
            "visibility": out_vis,
            "id": sample.id,
            "config": config,
            "base_index": base_index,
            "box": np.asarray(box if box is not None else _NO_BOX, dtype=np.int64),
            "target_instance": -1 if target is None else int(target),
        }

    def _apply_transform(
        self, sample: Sample, config: str, image: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray
    ) -> tuple[Any, np.ndarray, np.ndarray]:
        t = self._transform
        if hasattr(t, "set_random_seed"):
            t.set_random_seed(transform_seed(self.seed, sample.id, config))
        if self._label_fields is None:  # plain callable
            out = t(image=image, keypoints=keypoints.copy(), visibility=visibility.copy())
            if not isinstance(out, Mapping) or "image" not in out:
                raise TypeError("transform must return a dict with an 'image' entry")
            vis_in = np.asarray(out.get("visibility", visibility), dtype=bool).reshape(-1)
        else:
            labels = {f: visibility.astype(np.int64) for f in self._label_fields}
            out = t(image=image, keypoints=keypoints.copy(), **labels)
            vis_in = visibility
        kps = np.asarray(out.get("keypoints", keypoints), dtype=np.float32)
        if (
            kps.ndim != 2
            or kps.shape[0] != len(keypoints)
            or kps.shape[1] < 2
            or vis_in.shape != visibility.shape
        ):
            raise RuntimeError(
                f"transform returned keypoints of shape {kps.shape} for the {len(keypoints)} joints of "
                f"sample {sample.id!r}; a transform must keep every keypoint"
            )
        kps = np.ascontiguousarray(kps[:, :2])
        h, w = _image_hw(out["image"])
        inside = np.isfinite(kps).all(axis=1) & (kps[:, 0] >= 0) & (kps[:, 0] < w)
        inside &= (kps[:, 1] >= 0) & (kps[:, 1] < h)
        return out["image"], kps, vis_in & inside

    def __repr__(self) -> str:
        return (
            f"CorruptedDataset(mode={self.mode!r}, configs={len(self.configs)}, fraction={self.fraction}, "
            f"seed={self.seed}, base={len(self.base)}, items={len(self)})"
        )


def keypoints_after(info: Mapping[str, Any], keypoints: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """Return where the keypoints are after a corruption: moved with the content where it says so.

    A corruption that moves the image content (an elastic warp configured to move keypoints)
    reports where each keypoint went as ``info["keypoints"]``. Only labelled keypoints
    (``visibility`` true: COCO ``v`` of 1 or 2) take those places; an unlabelled one keeps the
    source's ``x, y`` (COCO's ``0, 0`` with ``v = 0``), which marks no place in the image that a
    warp could move. Without a report, ``keypoints`` is returned as it is.

    Examples
    --------
    >>> kps = np.array([[10.0, 20.0], [0.0, 0.0]])
    >>> keypoints_after({"keypoints": [[12.5, 21.0], [3.0, 4.0]]}, kps, np.array([True, False])).tolist()
    [[12.5, 21.0], [0.0, 0.0]]
    >>> keypoints_after({"box": (1, 2, 3, 4)}, kps, np.array([True, False])) is kps
    True
    """
    moved = info.get("keypoints")
    if moved is None:
        return keypoints
    labelled = np.asarray(visibility, dtype=bool).reshape(-1, 1)
    return np.where(labelled, np.asarray(moved, dtype=np.float64)[:, :2], keypoints)


def check_runnable(configs: Sequence[str]) -> None:
    """Check, before any work, that each configuration finds the files it needs.

    ImageNet-C's frost blends in photographs that are not part of this package (see
    :func:`~keypoint_corrupt.functional.imagenet_c.frost`); the other corruptions need
    nothing but their parameters.

    Raises
    ------
    FileNotFoundError
        One line naming the configurations that cannot run, the missing file and how to get it.

    Examples
    --------
    >>> check_runnable(["defocus-7", "noise-gaussian"])
    """
    frost = [name for name in configs if _uses_frost(name)]
    if not frost:
        return
    try:
        configured_frost_folder()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{', '.join(frost)} cannot run: {exc}") from None


def _uses_frost(name: str) -> bool:
    config = get_config(name)
    return issubclass(config.transform, ImageNetC) and config.params.get("corruption") == "frost"


def _image_hw(image: Any) -> tuple[int, int]:
    shape = tuple(image.shape)
    if isinstance(image, np.ndarray):
        return int(shape[0]), int(shape[1])
    return int(shape[-2]), int(shape[-1])  # a CHW tensor, e.g. after ToTensorV2


def _prepare_transform(transform: Any) -> tuple[Any, list[str] | None]:
    """Return the callable to run and the label fields that take visibility (None: plain callable)."""
    if transform is None:
        return None, None
    if isinstance(transform, A.Compose):
        proc = getattr(transform, "processors", {}).get("keypoints")
        if proc is None:
            raise ValueError(
                "transform: this albumentations Compose has no keypoint_params, so keypoints would not "
                "follow the image; build it with keypoint_params=A.KeypointParams(format='xy', "
                "remove_invisible=False)"
            )
        params = proc.params
        if params.format != "xy":
            raise ValueError(f"transform: KeypointParams format must be 'xy', got {params.format!r}")
        if params.remove_invisible:
            raise ValueError(
                "transform: KeypointParams(remove_invisible=True) (albumentations' default) drops "
                "keypoints that leave the image; pass remove_invisible=False (keypoints that leave "
                "the image are then marked invisible instead)"
            )
        return transform, list(params.label_fields or [])
    if isinstance(transform, (A.BasicTransform, A.BaseCompose)):
        wrapped = A.Compose(
            [transform],
            keypoint_params=A.KeypointParams(
                format="xy", remove_invisible=False, label_fields=["visibility"]
            ),
        )
        return wrapped, ["visibility"]
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    return transform, None
