#!/usr/bin/env bash
# Download, here, the wheels that the GPU machine's image lacks (albumentations and its
# dependencies), for that image's Python (3.12, x86-64 Linux), into .whl/ (git-ignored).
# The device machine reaches no package index, so a `run` call carries them:
#   run(command="bash benchmarks/gpu/session.sh all", carry=[".whl"])
set -euo pipefail
cd "$(dirname "$0")/../.."
PY_VERSION=${PY_VERSION:-3.12}
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest .whl \
    --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.3 pydantic-core==2.50.4 \
    annotated-types typing-inspection simsimd stringzilla
du -sh .whl && ls .whl
