"""The one table of transform definitions that the contract tests run over.

One ``Row`` per public :class:`~keypoint_corrupt.CorruptionTransform` subclass: constructor
arguments (a default and a non-default set), the functional function it wraps, whether it is
random, and the argument errors it must raise. ``tests/test_transform_contract.py`` fails when
a transform class has no row here, so adding a corruption needs exactly one test change: a row.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F

INIT = "init"  # the transform's constructor
FUNCTIONAL = "functional"  # the functional function, called with the argument as a keyword
CALL = "call"  # a keyword of corrupt() and of the functional function (keypoints, visibility, rng)


@dataclass(frozen=True)
class Bad:
    """A bad value for ``arg``: raises ``exc`` with a message matching ``match`` in ``where``."""

    arg: str
    value: Any
    exc: type[Exception]
    match: str
    where: tuple[str, ...] = (INIT, FUNCTIONAL)


@dataclass(frozen=True)
class Row:
    """One transform class and everything the contract tests need to exercise it."""

    cls: type[kc.CorruptionTransform]
    default: Mapping[str, Any]  # required arguments only: every other argument at its default
    non_default: Mapping[str, Any]  # every __init__ argument, none at its default
    functional: Callable[..., Any]  # the functional core it wraps
    random: bool  # different seeds give different outputs
    # the default arguments on the tests' images draw nothing that shows, when that differs from random
    # (PoseBench's mask squares every keypoint when there are at most five)
    default_random: bool | None = None
    bad: tuple[Bad, ...] = ()
    seeds_from_image: bool = False  # inside albumentations: noise seeded by generator + CRC of the image
    # (t, image, keypoints, visibility, rng) -> expected image, when calling ``functional`` with
    # the transform's arguments by name is not enough (e.g. it takes a drawn value)
    reference_fn: Callable[..., Any] | None = None

    @property
    def id(self) -> str:
        return self.cls.__name__

    def is_random(self, which: str) -> bool:
        """Whether different seeds give different outputs for the ``which`` arguments."""
        if which == "default" and self.default_random is not None:
            return self.default_random
        return self.random

    def make(self, which: str = "default", **overrides: Any) -> kc.CorruptionTransform:
        args = self.default if which == "default" else self.non_default
        return self.cls(**{**args, **overrides})

    def reference(self, t: kc.CorruptionTransform, image, keypoints=None, visibility=None, rng=None):
        """What the functional core gives for ``t``'s arguments with the generator ``rng``."""
        if self.reference_fn is not None:
            return self.reference_fn(t, image, keypoints, visibility, rng)
        params = inspect.signature(self.functional).parameters
        kwargs = {n: getattr(t, n) for n in t.get_transform_init_args_names() if n in params}
        call = {"keypoints": keypoints, "visibility": visibility, "rng": rng}
        kwargs.update({k: v for k, v in call.items() if k in params})
        out = self.functional(image, **kwargs)
        return out[0] if isinstance(out, tuple) else out

    def pipeline_rng(self, t: kc.CorruptionTransform, image: np.ndarray, seed: int) -> np.random.Generator:
        """The generator ``t`` draws from after ``t.set_random_seed(seed)``, for one call on ``image``.

        The transform's own generator, except for noise, which (as documented in
        docs/corruptions.md) seeds each call from one draw of it and a CRC-32 of the image.
        """
        gen = np.random.default_rng(seed)
        if not self.seeds_from_image:
            return gen
        draw = int(gen.integers(0, 2**63))
        crc = zlib.crc32(np.ascontiguousarray(image).data)
        return np.random.default_rng(np.random.SeedSequence([draw, crc, zlib.crc32(t.family.encode())]))


def suite_reference(t: kc.CorruptionTransform, image, keypoints, visibility, rng):
    """ImageNetC / PoseBench as documented: the generator draws the severity (range), then the corruption."""
    if isinstance(rng, int) and not isinstance(rng, bool) and rng >= 0:
        rng = np.random.default_rng(rng)  # as corrupt() turns an int seed into a generator
    severity = (
        int(rng.integers(t.severity[0], t.severity[1] + 1)) if isinstance(t.severity, tuple) else t.severity
    )
    if isinstance(t, kc.PoseBench) and t.corruption == "mask":
        return F.posebench.mask(image, severity, rng, keypoints=keypoints, visibility=visibility)
    kernels = F.posebench.CORRUPTIONS if isinstance(t, kc.PoseBench) else F.imagenet_c.CORRUPTIONS
    return kernels[t.corruption](image, severity, rng)


#: Bad severities, common to the two suite transforms.
SUITE_BAD_SEVERITY: tuple[Bad, ...] = (
    Bad("severity", 7, ValueError, r"severity must be in 1..5, got 7"),
    Bad("severity", 0, ValueError, r"severity must be in 1..5, got 0"),
    Bad("severity", 2.0, TypeError, r"severity must be an int in 1..5.*2.0"),
    Bad("severity", True, TypeError, r"severity must be an int in 1..5.*True"),
    Bad(
        "severity",
        (4, 2),
        ValueError,
        r"severity range must have 1 <= low <= high <= 5, got \(4, 2\)",
        (INIT,),
    ),
    Bad("severity", (0, 3), ValueError, r"severity range must have 1 <= low.*\(0, 3\)", (INIT,)),
    Bad("severity", (1, 2, 3), TypeError, r"severity must be .*\(low, high\) pair.*\(1, 2, 3\)", (INIT,)),
    Bad("severity", (1.0, 2), TypeError, r"severity must be .*\(low, high\) pair.*\(1.0, 2\)", (INIT,)),
)


DEFINITIONS: tuple[Row, ...] = (
    Row(
        kc.DefocusBlur,
        default={"kernel_size": 7},
        non_default={"kernel_size": 13, "p": 0.7},
        functional=F.defocus_blur,
        random=False,
        bad=(
            Bad("kernel_size", 8, ValueError, r"kernel_size must be odd.*8"),
            Bad("kernel_size", 4, ValueError, r"kernel_size must be odd.*4"),
            Bad("kernel_size", 0, ValueError, r"kernel_size must be >= 1, got 0"),
            Bad("kernel_size", -3, ValueError, r"kernel_size.*-3"),
            Bad("kernel_size", 7.0, TypeError, r"kernel_size must be an integer, got 7.0"),
        ),
    ),
    Row(
        kc.HorizontalMotionBlur,
        default={"kernel_size": 15},
        non_default={"kernel_size": 30, "p": 0.6},
        functional=F.motion_blur,
        random=False,
        bad=(
            Bad("kernel_size", True, TypeError, r"kernel_size must be an integer, got True"),
            Bad("kernel_size", "15", TypeError, r"kernel_size must be an integer, got '15'"),
            Bad("kernel_size", 0, ValueError, r"kernel_size must be >= 1, got 0"),
        ),
    ),
    Row(
        kc.KeypointOcclusion,
        default={"area": 0.2},
        non_default={
            "area": 0.25,
            "margin": 0.3,
            "fill": (10.0, 20.0, 30.0),
            "visibility_label": "vis",
            "instance_label": "person",
            "p": 0.9,
        },
        functional=F.occlude,
        random=True,
        bad=(
            Bad("area", 0.0, ValueError, r"area must be > 0.0, got 0.0"),
            Bad("area", 0, ValueError, r"area must be > 0.0, got 0"),
            Bad("area", 1.5, ValueError, r"area must be <= 1.0, got 1.5"),
            Bad("margin", -0.1, ValueError, r"margin must be >= 0.0, got -0.1"),
            Bad("fill", -1, ValueError, r"fill must .*got -1"),
            Bad("fill", (1, 2), ValueError, r"fill must be a (non-negative )?scalar.*\(1, 2\)"),
            Bad("fill", 300, ValueError, r"fill must lie in \[0, 255\].*300", where=(FUNCTIONAL,)),
            Bad(
                "visibility_label",
                3,
                TypeError,
                r"visibility_label must be a str or None, got 3",
                where=(INIT,),
            ),
            Bad(
                "instance_label",
                3,
                TypeError,
                r"instance_label must be a str or None, got 3",
                where=(INIT,),
            ),
            Bad(
                "keypoints",
                [1, 2, 3],
                ValueError,
                r"keypoints must have shape \(N, 2\).*\(3,\)",
                where=(CALL,),
            ),
            Bad("keypoints", np.zeros((3, 1)), ValueError, r"keypoints.*\(3, 1\)", where=(CALL,)),
            Bad("keypoints", [["a", "b"]], TypeError, r"keypoints must be numeric", where=(CALL,)),
            Bad("visibility", [1, 1, 1], ValueError, r"visibility must have shape \(2,\)", where=(CALL,)),
        ),
    ),
    Row(
        kc.GaussianNoise,
        default={},
        non_default={"var": 0.02, "mean": 0.1, "p": 0.5},
        functional=F.gaussian_noise,
        random=True,
        seeds_from_image=True,
        bad=(
            Bad("var", -0.01, ValueError, r"var must be >= 0.0, got -0.01"),
            Bad("var", -1, ValueError, r"var must be >= 0.0, got -1"),
            Bad("var", float("nan"), ValueError, r"var must be finite"),
            Bad("mean", 2.0, ValueError, r"mean must be <= 1.0, got 2.0"),
        ),
    ),
    Row(
        kc.SaltPepperNoise,
        default={},
        non_default={"amount": 0.1, "salt_vs_pepper": 0.3, "per_channel": False, "p": 0.4},
        functional=F.salt_pepper_noise,
        random=True,
        seeds_from_image=True,
        bad=(
            Bad("amount", 1.2, ValueError, r"amount must be <= 1.0, got 1.2"),
            Bad("amount", 2, ValueError, r"amount must be <= 1.0, got 2"),
            Bad("salt_vs_pepper", -1, ValueError, r"salt_vs_pepper must be >= 0.0"),
            Bad("per_channel", "yes", TypeError, r"per_channel must be a bool"),
            Bad("per_channel", 1, TypeError, r"per_channel must be a bool, got 1"),
        ),
    ),
    Row(
        kc.ImageNetC,
        default={"corruption": "gaussian_noise"},
        non_default={
            "corruption": "elastic_transform",
            "severity": (2, 4),
            "move_keypoints": False,
            "p": 0.5,
        },
        functional=F.imagenet_c.gaussian_noise,
        random=True,
        seeds_from_image=True,
        reference_fn=suite_reference,
        bad=(
            Bad(
                "corruption",
                "fog2",
                ValueError,
                r"corruption must be one of the 19 ImageNet-C corruptions \(gaussian_noise, .*, saturate\), "
                r"got 'fog2'",
                where=(INIT,),
            ),
            Bad(
                "corruption", None, ValueError, r"corruption must be one of the 19 .*got None", where=(INIT,)
            ),
            Bad("move_keypoints", 1, TypeError, r"move_keypoints must be a bool, got 1", where=(INIT,)),
            *SUITE_BAD_SEVERITY,
        ),
    ),
    Row(
        kc.PoseBench,
        default={"corruption": "mask"},
        non_default={
            "corruption": "mask",
            "severity": (2, 5),
            "visibility_label": "vis",
            "instance_label": "person",
            "p": 0.8,
        },
        functional=F.posebench.mask,
        random=True,
        default_random=False,
        seeds_from_image=True,
        reference_fn=suite_reference,
        bad=(
            Bad(
                "corruption",
                "gaussian_blur",
                ValueError,
                r"corruption must be one of the 10 PoseBench corruptions \(motion_blur, .*, mask\), "
                r"got 'gaussian_blur'",
                where=(INIT,),
            ),
            Bad(
                "visibility_label",
                3,
                TypeError,
                r"visibility_label must be a str or None, got 3",
                where=(INIT,),
            ),
            Bad(
                "instance_label",
                3,
                TypeError,
                r"instance_label must be a str or None, got 3",
                where=(INIT,),
            ),
            Bad(
                "keypoints",
                [1, 2, 3],
                ValueError,
                r"keypoints must have shape \(N, 2\).*\(3,\)",
                where=(CALL,),
            ),
            Bad("keypoints", [["a", "b"]], TypeError, r"keypoints must be numeric", where=(CALL,)),
            Bad("visibility", [1, 1, 1], ValueError, r"visibility must have shape \(2,\)", where=(CALL,)),
            *SUITE_BAD_SEVERITY,
        ),
    ),
)

#: Checked for every row: the probability and the generator are common to all transforms.
COMMON_BAD: tuple[Bad, ...] = (
    Bad("p", 2, ValueError, r"p must be <= 1.0, got 2", where=(INIT,)),
    Bad("p", -0.5, ValueError, r"p must be >= 0.0, got -0.5", where=(INIT,)),
    Bad("p", "1", TypeError, r"p must be a real number, got '1'", where=(INIT,)),
    # (the ImageNet-C kernels also accept a RandomState, and say so first)
    Bad("rng", "seed", TypeError, r"rng must be (an int seed, )?a numpy.random.Generator", where=(CALL,)),
    Bad("rng", -1, ValueError, r"rng seed must be >= 0, got -1", where=(CALL,)),
)

#: Bad images: every functional function and every corrupt() rejects them, naming the problem.
BAD_IMAGES: tuple[tuple[str, Any, type[Exception], str], ...] = (
    ("list", [[1, 2]], TypeError, r"image must be a numpy.ndarray, got list"),
    ("empty", np.zeros((0, 5), np.uint8), ValueError, r"image is empty"),
    ("float64", np.zeros((4, 4, 3), np.float64), TypeError, r"dtype uint8 or float32.*float64"),
    ("uint16", np.zeros((4, 4, 3), np.uint16), TypeError, r"uint16"),
    ("2-channels", np.zeros((4, 4, 2), np.uint8), ValueError, r"1, 3 or 4 channels.*\(4, 4, 2\)"),
    ("ndim-1", np.zeros((4,), np.uint8), ValueError, r"ndim=1"),
    ("ndim-4", np.zeros((2, 4, 4, 3), np.uint8), ValueError, r"ndim=4"),
    ("float-above-1", np.full((4, 4), 1.5, np.float32), ValueError, r"\[0, 1\].*max=1.5"),
    ("float-nan", np.full((4, 4), np.nan, np.float32), ValueError, r"finite"),
)


def row_for(cls: type) -> Row:
    """The row of a transform class."""
    return next(r for r in DEFINITIONS if r.cls is cls)
