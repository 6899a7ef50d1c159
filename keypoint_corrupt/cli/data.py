"""What several commands read alike: ``--data`` (STB root, COCO file or materialised output),
``--configs``, and ``--suite`` / ``--severities``.

One resolver each, so ``train``, ``benchmark``, ``materialize`` and ``preview`` accept exactly
the same inputs. This module imports nothing heavy at load time (each function imports what it
needs): commands call :func:`add_suite_options` while building their parsers, and ``--help``
must not load NumPy, OpenCV or torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from keypoint_corrupt.cli.main import CliError

if TYPE_CHECKING:
    from keypoint_corrupt.datasets import Sample
    from keypoint_corrupt.schema import KeypointSchema
    from keypoint_corrupt.suites import Suite


def add_suite_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--suite NAME`` and ``--severities 1-5|1,3,5`` (both default ``None``) to ``parser``.

    Read them back with :func:`configs_from_suite`, which also refuses ``--suite`` with
    ``--configs``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_suite_options(parser)
    >>> parser.parse_args(["--suite", "costa2021"]).severities is None
    True
    """
    parser.add_argument(
        "--suite",
        default=None,
        metavar="NAME",
        help="a corruption suite (costa2021, imagenet-c, imagenet-c-extra, posebench or one you "
        "registered; see 'keypoint-corrupt list --suite NAME'); excludes --configs",
    )
    parser.add_argument(
        "--severities",
        default=None,
        metavar="1-5|1,3,5",
        help="severities of --suite (default: all of the suite's)",
    )


def configs_from_suite(args: argparse.Namespace) -> tuple[Suite | None, tuple[str, ...] | None]:
    """Return ``(suite, configuration names)`` of ``--suite`` / ``--severities``.

    ``(None, None)`` without ``--suite``. The names are corruption-major (each corruption's
    severities in order), as :meth:`~keypoint_corrupt.suites.Suite.configs` lists them. Errors
    (:class:`~keypoint_corrupt.cli.main.CliError`, one line naming the option and the value):
    ``--suite`` with ``--configs``, ``--severities`` without ``--suite``, an unknown suite, a
    malformed or out-of-range ``--severities``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_suite_options(parser)
    >>> suite, configs = configs_from_suite(parser.parse_args(["--suite", "costa2021", "--severities", "2"]))
    >>> suite.name, configs
    ('costa2021', ('defocus-13', 'motion-30', 'occlusion-20'))
    """
    from keypoint_corrupt.suites import get_suite, parse_severities

    name = getattr(args, "suite", None)
    severities = getattr(args, "severities", None)
    if name is None:
        if severities is not None:
            raise CliError(f"--severities {severities} needs --suite NAME")
        return None, None
    if getattr(args, "configs", None) is not None:
        raise CliError(f"--suite {name} and --configs {args.configs} exclude each other: give one")
    try:
        suite = get_suite(name)
    except ValueError as exc:
        raise CliError(f"--suite: {exc}") from None
    try:
        wanted = None if severities is None else parse_severities(severities)
        configs = suite.configs(severities=wanted)
    except ValueError as exc:
        raise CliError(f"--severities {severities}: {exc}") from None
    return suite, configs


def suite_severities(suite: Suite, configs: Sequence[str]) -> tuple[int, ...]:
    """Return the severities that ``configs`` (of :func:`configs_from_suite`) hold in ``suite``, ascending.

    Examples
    --------
    >>> from keypoint_corrupt.suites import get_suite
    >>> suite_severities(get_suite("costa2021"), ("defocus-13", "motion-45", "defocus-7"))
    (1, 2, 3)
    """
    return tuple(sorted({suite.locate(config)[1] for config in configs}))


def parse_configs(text: str | None) -> tuple[str, ...] | None:
    """``--configs`` as every command reads it: ``None`` (not given), ``all`` or ``a,b,c``.

    ``all`` is the eleven reference configurations (:data:`~keypoint_corrupt.registry.CONFIGS`),
    not every registered name: the suites' configurations are chosen with ``--suite``. The error
    for an unknown name lists the valid ones, the suites' summarised by prefix.
    """
    from keypoint_corrupt.registry import CONFIGS, available_configs, summarize_names

    if text is None:
        return None
    if text.strip().lower() == "all":
        return CONFIGS
    configs = tuple(part.strip() for part in text.split(",") if part.strip())
    known = available_configs()
    unknown = [c for c in configs if c not in known]
    if unknown or not configs:
        raise CliError(
            f"unknown configuration(s) {', '.join(unknown) or '(none given)'}; "
            f"valid: all (the eleven reference configurations) or {summarize_names(known)}"
        )
    if len(set(configs)) != len(configs):
        raise CliError(f"--configs repeats a configuration: {text}")
    return configs


def is_stb_root(path: Path) -> bool:
    return (path / "labels").is_dir() or (path.parent / "labels").is_dir()


#: The fields of one person in MMPose's MPII JSON (a list of them).
MPII_FIELDS = ("image", "joints", "joints_vis", "center", "scale")


def json_kind(path: str | Path, option: str = "--data") -> str:
    """Say by its content whether a ``.json`` file is a COCO keypoint file or MMPose's MPII JSON.

    ``"coco"``: an object with ``images`` and ``annotations`` (checked on the text, so a large COCO
    file is parsed once, by its reader); ``"mpii"``: a non-empty list of people with MPII's fields
    (:data:`MPII_FIELDS`). Anything else is a :class:`~keypoint_corrupt.cli.main.CliError` naming
    ``option``, the file and what was found; the file's name is never used.

    Examples
    --------
    >>> import json, tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    >>> person = {"image": "a.jpg", "joints": [[0, 0]] * 16, "joints_vis": [1] * 16}
    >>> person.update(center=[0, 0], scale=1)
    >>> _ = (d / "b.json").write_text(json.dumps([person]))
    >>> json_kind(d / "a.json"), json_kind(d / "b.json")
    ('coco', 'mpii')
    """
    import json

    path = Path(path)
    neither = f"{option} {path}: neither a COCO keypoint file nor MMPose's MPII JSON"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    text = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        missing = [key for key in ("images", "annotations") if f'"{key}"'.encode() not in text]
        if missing:
            raise CliError(
                f"{neither} (a JSON object without {' or '.join(repr(k) for k in missing)}; COCO has "
                "'images', 'annotations' and 'categories')"
            )
        return "coco"
    if not text.startswith(b"["):
        raise CliError(f"{neither} (COCO: a JSON object; MPII: a JSON list of people)")
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{option} {path}: not a JSON file ({exc})") from None
    first = doc[0] if isinstance(doc, list) and doc else None
    lacking = [k for k in MPII_FIELDS if k not in first] if isinstance(first, dict) else list(MPII_FIELDS)
    if lacking:
        found = "an empty list" if not doc else f"a list whose first entry lacks {', '.join(lacking)}"
        raise CliError(f"{neither} ({found}; MPII: a list of {{{', '.join(MPII_FIELDS)}}})")
    return "mpii"


def open_data(
    data: str | None, images: str | None = None, split: str = "val", schema: str | None = None
) -> tuple[Any, bool]:
    """The samples of ``split`` (or, for a materialised output, its path) and whether it is materialised.

    A ``.json`` file is read by its content (:func:`json_kind`): a COCO keypoint file with
    :class:`~keypoint_corrupt.datasets.CocoKeypoints`, MMPose's MPII JSON with
    :class:`~keypoint_corrupt.datasets.mpii.MpiiPeople` (one sample per person). ``schema`` (a
    preset name) is checked here and given to a COCO file's reader; callers pass it on to whatever
    else needs the joint order.
    """
    from keypoint_corrupt.benchmark.sources import is_materialized
    from keypoint_corrupt.datasets import STB, CocoKeypoints, bundled_sample_root
    from keypoint_corrupt.datasets.mpii import MpiiPeople
    from keypoint_corrupt.schema import get_schema

    if schema is not None:
        try:
            get_schema(schema)
        except ValueError as exc:
            raise CliError(f"--schema: {exc}") from None

    try:
        if data is None:
            return STB(bundled_sample_root(), split), False
        path = Path(data)
        if not path.exists():
            raise CliError(f"--data not found: {path}")
        if images is not None and not Path(images).is_dir():
            raise CliError(f"--images not found: {images}")
        if path.is_file():  # by its content, whatever its name
            if json_kind(path) == "mpii":
                _mpii_schema(path, schema)
                return MpiiPeople(path, images), False
            return CocoKeypoints(path, images, schema=schema), False
        if is_materialized(path):
            return str(path), True
        if is_stb_root(path):
            return STB(path, split), False
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    raise CliError(
        f"--data {data}: not an STB root (labels/), a COCO or MMPose MPII .json file or a materialised "
        "output (<split>/<config>/annotations.json)"
    )


def _mpii_schema(path: Path, schema: str | None) -> None:
    """Refuse a ``--schema`` other than ``mpii16`` for an MPII file (its joints are MPII's, in its order)."""
    if schema is not None and schema != "mpii16":
        raise CliError(f"--schema {schema}: {path} is MMPose's MPII JSON, whose joints are mpii16")


class SampleItems(Sequence):
    """Samples as training items, dicts of ``image``, ``keypoints``, ``visibility``, ``id``."""

    def __init__(self, *parts: Sequence[Sample]) -> None:
        self._index = [(p, i) for p in parts for i in range(len(p))]

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        from keypoint_corrupt.datasets import load_item

        part, j = self._index[i]
        return load_item(part[j])


def _materialized_split(root: Path, split: str, with_configs: bool) -> list[Any] | None:
    """The clean split (and each corrupted subset) of a materialised output, read as ``benchmark`` reads it.

    ``None`` when the output has no clean annotations for ``split``.
    """
    from keypoint_corrupt.benchmark.sources import MaterializedSource
    from keypoint_corrupt.datasets import CLEAN

    if not (root / split / CLEAN / "annotations.json").is_file():
        return None
    source = MaterializedSource(root, split, configs=None if with_configs else ())
    return [source.samples(name) for name, _ in source.groups]


def training_data(
    data: str | None,
    images: str | None,
    train_set: str,
    *,
    fraction: float = 0.2,
    seed: int = 0,
    val_data: str | None = None,
    schema: str | None = None,
) -> tuple[Sequence[Any], Sequence[Any] | None, dict[str, Any], KeypointSchema | None]:
    """Training items (S-train or S-train*), validation items (clean S-val when known), a description
    and the training items' keypoint schema.

    STB and the bundled sample: the ``train`` split, validated on ``val``. A COCO file: all its
    annotations, validated on ``val_data`` if given. A materialised output: ``train/clean`` (plus
    every ``train/<config>`` subset for S-train*), validated on ``val/clean``. For STB and COCO,
    S-train* is built on the fly (:class:`~keypoint_corrupt.datasets.CorruptedDataset`, mode
    ``append``) with ``fraction`` and ``seed``.

    The schema is ``schema`` (a preset name: the data's joint order, given to a COCO file's
    reader as :func:`open_data` does) or else the opened dataset's ``.schema``: STB's, the COCO
    file's, or for a materialised output its ``train/clean`` annotation file's (``None`` when a
    COCO file's categories differ); the training crops centre on its anchor joints by name.
    """
    from keypoint_corrupt.datasets import STB, CorruptedDataset
    from keypoint_corrupt.schema import get_schema

    star = train_set == "S-train*"
    found: KeypointSchema | None
    try:
        if data is not None and not Path(data).exists():
            raise CliError(f"--data not found: {data}")
        path = None if data is None else Path(data)
        info: dict[str, Any] = {
            "data": "bundled sample" if path is None else str(path),
            "train_set": train_set,
        }
        val: Sequence[Any] | None = None
        train: Sequence[Any]
        if path is not None and path.is_dir() and (path / "manifest.json").is_file():
            parts = _materialized_split(path, "train", star)
            if parts is None:
                raise CliError(f"--data {path}: a materialised output without train/clean/annotations.json")
            train = SampleItems(*parts)
            found = parts[0].schema
            val_parts = _materialized_split(path, "val", False)
            val = SampleItems(*val_parts) if val_parts else None
            info["source"] = "materialized"
        else:
            if path is not None and path.is_file():
                base, _ = open_data(data, images, schema=schema)
            else:
                base, _ = open_data(data, images, split="train")
                val = SampleItems(STB(base.root, "val"))
            found = base.schema
            if star:
                # A map-style dataset (len, [i]), all that training reads; not a full Sequence
                # (it refuses slices), hence the cast.
                train = cast(
                    Sequence[Any], CorruptedDataset(base, fraction=fraction, seed=seed, mode="append")
                )
            else:
                train = SampleItems(base)
            info.update(source="stream", fraction=fraction, seed=seed)
        if val_data is not None:
            vbase, materialized = open_data(val_data, None, split="val", schema=schema)
            if materialized:
                raise CliError("--val-data must be an STB root or a COCO .json file")
            val = SampleItems(vbase)
        if schema is not None:
            found = get_schema(schema)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return train, val, info, found
