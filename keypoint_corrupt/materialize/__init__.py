"""Write corrupted subsets (S-train*, S-val*) to disk: resumable, shardable, verifiable.

* :func:`materialize` - render every configuration's subset of each split, with COCO
  keypoint annotations (and, for an MPII source, MMPose's MPII JSON beside them) and a
  manifest (SHA-256 of every file).
* :func:`verify_output` - recheck a written folder against its manifest.

The command line wraps both: ``keypoint-corrupt materialize`` and ``keypoint-corrupt verify``
(see ``docs/cli.md`` for the layout, the manifest schema and the resume / shard semantics).

Examples
--------
>>> import tempfile, pathlib
>>> from keypoint_corrupt.datasets import bundled_sample_root
>>> out = pathlib.Path(tempfile.mkdtemp()) / "o"
>>> spec = DatasetSpec("stb", bundled_sample_root(), bundled=True)
>>> res = materialize(MaterializeOptions(out, spec, splits=("val",), configs=("defocus-7", "occlusion-20")))
>>> res.written, res.complete, verify_output(out).ok  # 4 corrupted images + the 8 clean copies
(12, True, True)
"""

from keypoint_corrupt.materialize.plan import DatasetSpec, MaterializeError, build_plan, output_stem
from keypoint_corrupt.materialize.run import (
    MaterializeOptions,
    MaterializeResult,
    default_workers,
    materialize,
)
from keypoint_corrupt.materialize.verify import VerifyReport, verify_output
from keypoint_corrupt.materialize.writer import EncodeOptions

__all__ = [
    "DatasetSpec",
    "EncodeOptions",
    "MaterializeError",
    "MaterializeOptions",
    "MaterializeResult",
    "VerifyReport",
    "build_plan",
    "default_workers",
    "materialize",
    "output_stem",
    "verify_output",
]
