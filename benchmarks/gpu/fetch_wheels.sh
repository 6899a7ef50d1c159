#!/usr/bin/env bash
# Download, here, the wheels that the GPU machine's image lacks, for that image's Python
# (3.12, x86-64 Linux), into .whl/ (git-ignored): albumentations and its dependencies,
# pycocotools (the COCO protocol and its corrupt-on test), kornia and kornia-rs (bench_torch's
# comparison), imagecorruptions (only its frost textures, for the ImageNet-C parity table;
# installed with --no-deps). The image already has pytest, pluggy, iniconfig, hypothesis,
# sortedcontainers, numba, scipy, matplotlib, tqdm and opencv-python-headless
# (/work/.library/device/KINDS.md). The device machine reaches no package index, so a `run`
# call carries them; session.sh's setup installs only what the image lacks, with these pins:
#   run(command="bash benchmarks/gpu/session.sh torch speed", carry=[".whl"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY_VERSION=${PY_VERSION:-3.12}
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest .whl \
    --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.3 pydantic-core==2.50.4 \
    annotated-types typing-inspection simsimd stringzilla \
    pycocotools==2.0.11 kornia==0.9.0 kornia-rs==0.2.0 imagecorruptions==1.1.2
du -sh .whl && ls .whl
