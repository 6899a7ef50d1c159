"""Corruption suites, as data: which configuration is corruption C at severity S.

A suite is a table ``corruption -> (configuration name at severity 1, 2, ...)`` over the
configurations of :mod:`keypoint_corrupt.registry`. The built-in suites:

* ``costa2021``: the eleven configurations of the reference study (Costa et al.), each family
  at its own levels (defocus 7/13/21 as severities 1/2/3, one level for each noise);
* ``imagenet-c``: the 15 ImageNet-C corruptions at 5 severities, as COCO-C, MPII-C and
  OCHuman-C use them (labels as published: ``elastic_transform`` moves the image content, not
  the annotations);
* ``imagenet-c-extra``: the 4 held-out ImageNet-C corruptions;
* ``posebench``: PoseBench's 10 corruptions at 5 severities.

Users add their own with :func:`register_suite`.

Examples
--------
>>> suite = get_suite("costa2021")
>>> suite.config("motion", 2)
'motion-30'
>>> suite.locate("motion-30")
('motion', 2)
"""

from __future__ import annotations

import numbers
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from keypoint_corrupt.functional import imagenet_c, posebench
from keypoint_corrupt.registry import _IMAGENET_C, _POSEBENCH, _REFERENCE, CorruptionConfig, get_config

__all__ = [
    "Suite",
    "available_suites",
    "get_suite",
    "parse_severities",
    "register_suite",
    "unregister_suite",
]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
#: No suite has more levels than this; parse_severities refuses larger numbers outright.
_MAX_SEVERITY = 100


@dataclass(frozen=True)
class Suite:
    """A named table of corruptions by severity.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"imagenet-c"``.
    table : Mapping[str, tuple[str, ...]]
        ``table[corruption][severity - 1]`` is a registered configuration name; the order of
        the corruptions is the order of reports.
    description : str
        One line for listings.
    protocol : str
        What a user must know to compare numbers: the source of the definitions and what the
        labels of corrupted images mean.

    Examples
    --------
    >>> s = Suite("tiny", {"defocus": ("defocus-7", "defocus-13")})
    >>> s.configs(), s.severities
    (('defocus-7', 'defocus-13'), (1, 2))
    """

    name: str
    table: Mapping[str, tuple[str, ...]]
    description: str = ""
    protocol: str = ""
    _where: Mapping[str, tuple[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {str(c): tuple(names) for c, names in self.table.items()}
        if not table or any(not names for names in table.values()):
            raise ValueError(f"suite {self.name!r} needs at least one corruption with one severity")
        where: dict[str, tuple[str, int]] = {}
        for corruption, names in table.items():
            for severity, config in enumerate(names, start=1):
                if config in where:
                    raise ValueError(f"suite {self.name!r} lists configuration {config!r} twice")
                where[config] = (corruption, severity)
        object.__setattr__(self, "table", MappingProxyType(table))
        object.__setattr__(self, "_where", MappingProxyType(where))

    @property
    def corruptions(self) -> tuple[str, ...]:
        """The corruption names, in report order."""
        return tuple(self.table)

    @property
    def severities(self) -> tuple[int, ...]:
        """``1 .. the largest number of severities`` of any corruption."""
        return tuple(range(1, max(len(v) for v in self.table.values()) + 1))

    def config(self, corruption: str, severity: int) -> str:
        """Return the configuration name of ``corruption`` at ``severity``."""
        if corruption not in self.table:
            raise ValueError(
                f"suite {self.name!r} has no corruption {corruption!r}; valid: {', '.join(self.table)}"
            )
        levels = self.table[corruption]
        if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
            raise TypeError(f"severity must be an int, got {severity!r}")
        if not 1 <= severity <= len(levels):
            raise ValueError(
                f"severity of {corruption!r} in suite {self.name!r} must be in 1..{len(levels)}, "
                f"got {severity!r}"
            )
        return levels[int(severity) - 1]

    def configs(
        self, severities: Iterable[int] | None = None, corruptions: Iterable[str] | None = None
    ) -> tuple[str, ...]:
        """Return configuration names, corruption-major, for the given severities and corruptions.

        A severity beyond a corruption's levels is skipped for that corruption (``costa2021``'s
        noises have one level); a severity beyond every corruption's levels is an error.
        """
        wanted = tuple(self.severities if severities is None else severities)
        bad = [s for s in wanted if s not in self.severities]
        if bad:
            raise ValueError(
                f"severities of suite {self.name!r} are {self.severities[0]}..{self.severities[-1]}, "
                f"got {bad}"
            )
        chosen = tuple(self.corruptions if corruptions is None else corruptions)
        return tuple(
            self.config(c, s) for c in chosen for s in wanted if s <= len(self.table.get(c, (None,) * s))
        )

    def locate(self, config: str) -> tuple[str, int]:
        """``(corruption, severity)`` of a configuration name of this suite."""
        try:
            return self._where[config]
        except KeyError:
            raise ValueError(f"configuration {config!r} is not in suite {self.name!r}") from None


def _costa2021() -> Suite:
    families: dict[str, list[str]] = {}
    for cfg in _REFERENCE:
        key = cfg.name if cfg.family == "noise" else cfg.family
        families.setdefault(key, []).append(cfg.name)
    return Suite(
        "costa2021",
        {k: tuple(v) for k, v in families.items()},
        "the eleven configurations of the reference study (Costa et al.)",
        "Costa et al.: 20% corrupted subsets of STB (S-train*, S-val*); EPE and AUC",
    )


def _by_corruption(
    rows: Iterable[CorruptionConfig], corruptions: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """``corruption -> its configuration names by severity``, in the order of ``corruptions``."""
    levels: dict[str, list[tuple[int, str]]] = {c: [] for c in corruptions}
    for cfg in rows:
        if cfg.params["corruption"] in levels:
            levels[cfg.params["corruption"]].append((cfg.params["severity"], cfg.name))
    return {c: tuple(name for _, name in sorted(found)) for c, found in levels.items()}


_IMAGENET_C_SOURCE = (
    "Hendrycks and Dietterich (ICLR 2019), with the parameters of imagecorruptions 1.1.2 "
    "(docs/corruptions.md lists which corruptions are bit-exact with it)"
)


def _imagenet_c() -> Suite:
    return Suite(
        "imagenet-c",
        _by_corruption(_IMAGENET_C, imagenet_c.STANDARD),
        "the 15 ImageNet-C corruptions at 5 severities, as COCO-C, MPII-C and OCHuman-C use them",
        f"{_IMAGENET_C_SOURCE}; labels as published: elastic_transform moves the image content but "
        "not the annotations (Wang et al. 2021's COCO-C); mPC averages the metric over the 15 x 5 "
        "configurations, rPC = mPC / clean",
    )


def _imagenet_c_extra() -> Suite:
    return Suite(
        "imagenet-c-extra",
        _by_corruption(_IMAGENET_C, imagenet_c.EXTRA),
        "the 4 held-out ImageNet-C corruptions at 5 severities (not part of COCO-C's mPC)",
        f"{_IMAGENET_C_SOURCE}; none moves the image content, so labels are unchanged",
    )


def _posebench() -> Suite:
    return Suite(
        "posebench",
        _by_corruption(_POSEBENCH, posebench.NAMES),
        "PoseBench's 10 corruptions at 5 severities (Ma et al. 2024)",
        "Ma et al. 2024 (arXiv 2406.14367): the 7 corruptions shared with ImageNet-C use its "
        "parameters; colour quantisation, darkness and mask parameters are this package's "
        "(docs/corruptions.md); the mask is placed on visible keypoints; labels are unchanged; "
        "report mRR",
    )


_lock = threading.Lock()
_BUILTIN_SUITES: tuple[Suite, ...] = (_costa2021(), _imagenet_c(), _imagenet_c_extra(), _posebench())
_suites: dict[str, Suite] = {s.name: s for s in _BUILTIN_SUITES}


def available_suites() -> tuple[str, ...]:
    """Names of the registered suites: the built-ins, then the user's."""
    return tuple(_suites)


def get_suite(name: str) -> Suite:
    """Look up a suite by name; the error lists the valid names."""
    try:
        return _suites[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(_suites)}") from None


def register_suite(
    name: str,
    table: Mapping[str, Sequence[str]],
    *,
    description: str = "",
    protocol: str = "",
    replace: bool = False,
) -> Suite:
    """Register a suite of already registered configurations.

    Examples
    --------
    >>> s = register_suite("blur-only", {"defocus": ["defocus-7", "defocus-13", "defocus-21"]})
    >>> s.configs(severities=[3])
    ('defocus-21',)
    >>> unregister_suite("blur-only")
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"suite name must be lower-case letters, digits, '-', '_' or '.', got {name!r}")
    suite = Suite(name, {c: tuple(v) for c, v in table.items()}, description, protocol)
    for config in suite._where:
        get_config(config)  # an unknown configuration fails now, naming the valid ones
    with _lock:
        if any(s.name == name for s in _BUILTIN_SUITES):
            raise ValueError(f"{name!r} is a built-in suite and cannot be replaced")
        if name in _suites and not replace:
            raise ValueError(f"suite {name!r} is already registered (pass replace=True)")
        _suites[name] = suite
    return suite


def unregister_suite(name: str) -> None:
    """Remove a user's suite (built-in suites cannot be removed)."""
    with _lock:
        if any(s.name == name for s in _BUILTIN_SUITES):
            raise ValueError(f"{name!r} is a built-in suite and cannot be removed")
        if name not in _suites:
            raise ValueError(f"suite {name!r} is not registered")
        del _suites[name]


def parse_severities(text: str) -> tuple[int, ...]:
    """Parse ``"1-5"``, ``"1,3,5"`` or ``"2"`` into sorted unique severities (each >= 1).

    Examples
    --------
    >>> parse_severities("1-3,5")
    (1, 2, 3, 5)
    """
    found: set[int] = set()
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"severities must look like 1-5 or 1,3,5, got {text!r}") from None
        if first < 1 or last < first:
            raise ValueError(f"severities must be ranges of integers >= 1, got {text!r}")
        if last > _MAX_SEVERITY:  # before expanding: a typo such as 1-1000000000 must not eat memory
            raise ValueError(f"severities must be at most {_MAX_SEVERITY}, got {text!r}")
        found.update(range(first, last + 1))
    return tuple(sorted(found))
