#!/usr/bin/env bash
# The GPU measurements of issues 5 (training), 6 (Table I, bf16 check, whole-benchmark
# throughput) and 15 (batched torch corruptions), scripted so that a session lent a GPU
# spends its device time measuring, not typing. Every step is logged with its command, exit
# status and wall time; a failing step is recorded and the next one still runs.
#
#   bash benchmarks/gpu/fetch_wheels.sh          # here, once: wheels the device image lacks
#   run(command="BUDGET=450 bash benchmarks/gpu/session.sh torch", carry=[".whl"], timeout_s=480)
#   run(command="BUDGET=210 bash benchmarks/gpu/session.sh speed", carry=[".whl"], timeout_s=240)
#   run(command="bash benchmarks/gpu/session.sh train-posenet bench", carry=[".whl"], timeout_s=600)
#   bash benchmarks/gpu/session.sh --smoke all   # here, on the CPU: checks the script itself
# (the first two fit one 15-minute device session: docs/torch.md, "On a GPU")
#
# Each call must end within the device's 10 minutes, and a machine may be handed back
# between calls (checkpoints live on it only), so a stage that needs another's output runs
# in the same call. Stages: setup (always); torch (issue 15: torch-test = the torch tests
# with their CUDA variants and the agreement tables on the device, then torch-speed =
# bench_torch against kornia with the ImageNet-C grid, and the whole benchmark with
# --corrupt-on cuda against NumPy corruption and against model-only speed); speed (Table I
# with random weights: fp32, bf16 + channels-last, + torch.compile, + CUDA graphs);
# train-posenet and train-nerpe (a synthetic STB-layout set; S-train and S-train* each);
# bench (after train-posenet in the same call: bf16-vs-fp32 EPE on trained dense weights,
# the whole robustness benchmark with its images/s, Table II-style comparisons). Results go
# to $OUT (the device tool's folder) or ./gpu-out: session.log, summary.md and
# results.tar.gz (reports, histories, curves, torch tables; no checkpoints). Sizes: FRAMES,
# EPOCHS_PLAIN, EPOCHS_STAR, BATCH, WORKERS, TRAIN_TIMEOUT (seconds per training run; on
# expiry it is interrupted and keeps last.pt), TORCH_BATCH, TORCH_BENCH_BATCH and BUDGET:
# seconds from the start after which no step starts and each step is cut (SIGINT) at the
# time left, so that summary.md is always written within the call (default 540 on the
# device, 3600 with --smoke).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
SMOKE=0
STAGES=()
for arg in "$@"; do
    case $arg in
        --smoke) SMOKE=1 ;;
        all) STAGES+=(torch speed train-posenet bench train-nerpe) ;;
        torch | torch-test | torch-speed | speed | train-posenet | train-nerpe | bench) STAGES+=("$arg") ;;
        *)
            echo "unknown argument: $arg (stages: torch torch-test torch-speed speed train-posenet" \
                "train-nerpe bench all; option: --smoke)" >&2
            exit 2
            ;;
    esac
done
[ ${#STAGES[@]} -gt 0 ] || {
    echo "name at least one stage: torch torch-test torch-speed speed train-posenet train-nerpe bench all" >&2
    exit 2
}

OUT=${OUT:-$REPO/gpu-out}
WORK=${WORK:-/tmp/kc_gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
LOG=$OUT/session.log
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1

if [ "$SMOKE" = 1 ]; then
    DEVICE=cpu FRAMES=${FRAMES:-3} EPOCHS_PLAIN=${EPOCHS_PLAIN:-1} EPOCHS_STAR=${EPOCHS_STAR:-1}
    BATCH=${BATCH:-4} WORKERS=${WORKERS:-0} TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-600}
    SPEED_OPTS=(--iters 2 --warmup 1 --large-batch 2 --throughput-iters 1)
    CHECK_IMAGES=8
    BUDGET=${BUDGET:-3600}
    # torch stage: the fast tests only, two ImageNet-C kernels, tiny batches, fp32 on the CPU
    TORCH_TESTS=(tests/torch/test_batch.py tests/benchmark/test_corrupt_on.py)
    TORCH_BATCH=${TORCH_BATCH:-2} TORCH_SIZE=64 TORCH_ROUNDS=1 PARITY_BATCH=2
    PARITY_IC_OPTS=(--names gaussian_noise,contrast)
    TORCH_BENCH_BATCH=${TORCH_BENCH_BATCH:-4}
    TORCH_BENCH_DATA=(--split val --configs occlusion-20,noise-gaussian --fraction 0.5)
    TORCH_PRECISION=()
    TORCH_SPEED_OPTS=(--iters 1 --warmup 1 --large-batch 2 --throughput-iters 1)
else
    DEVICE=cuda FRAMES=${FRAMES:-120} EPOCHS_PLAIN=${EPOCHS_PLAIN:-12} EPOCHS_STAR=${EPOCHS_STAR:-4}
    BATCH=${BATCH:-64} WORKERS=${WORKERS:-12} TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-100}
    SPEED_OPTS=()
    CHECK_IMAGES=480
    BUDGET=${BUDGET:-540}
    TORCH_TESTS=(tests/torch tests/benchmark/test_corrupt_on.py)
    # bench_torch: 3 rounds (the grid: 1 timed pass of 15 kernels x 5 severities after a warm-up)
    TORCH_BATCH=${TORCH_BATCH:-256} TORCH_SIZE=256 TORCH_ROUNDS=3 PARITY_BATCH=8
    PARITY_IC_OPTS=()
    # 12 sequences x FRAMES frames x 2 BB images (2,880 at the default 120), every image clean
    # and in each of the eleven configurations: 34,560 images per run
    TORCH_BENCH_BATCH=${TORCH_BENCH_BATCH:-256}
    TORCH_BENCH_DATA=(--split all --fraction 1.0)
    TORCH_PRECISION=(--precision bf16 --channels-last)
    TORCH_SPEED_OPTS=(--iters 20 --warmup 5 --large-batch "$TORCH_BENCH_BATCH" --throughput-iters 20)
fi
DEADLINE=$((SECONDS + BUDGET))
STB=$WORK/stb
RUNS=$WORK/runs

kc() { "$PY" -m keypoint_corrupt "$@"; }

# step [--cap S] [--save FILE] NAME COMMAND...: run (kc: the CLI) with SIGINT after S seconds or
# at the session's deadline, whichever is first; log command, exit status and seconds; keep the
# whole output in FILE if given; never stop the session. A step with under 20 s left is skipped.
step() {
    local cap=$BUDGET save=/dev/null
    while :; do
        case $1 in
            --cap) cap=$2; shift 2 ;;
            --save) save=$2; shift 2 ;;
            *) break ;;
        esac
    done
    local name=$1
    shift
    [ "$1" = kc ] && { shift; set -- "$PY" -m keypoint_corrupt "$@"; }
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -lt 20 ]; then
        printf '\n### %s\n-> %s: skipped (%s s left of BUDGET=%s)\n' "$name" "$name" "$left" "$BUDGET" | tee -a "$LOG"
        echo "| $name | skipped: out of time | 0 |" >>"$WORK/steps.md"
        return 0
    fi
    [ "$cap" -gt "$left" ] && cap=$left
    local t0=$SECONDS
    printf '\n### %s\n$ %s\n' "$name" "$*" | tee -a "$LOG"
    timeout -s INT -k 15 "$cap" "$@" 2>&1 | tee "$save" | tail -n 40 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]} status
    status=$rc
    [ "$rc" = 124 ] && status="124 (cut at $cap s)"
    printf -- '-> %s: exit %s in %s s\n' "$name" "$status" "$((SECONDS - t0))" | tee -a "$LOG"
    echo "| $name | $status | $((SECONDS - t0)) |" >>"$WORK/steps.md"
    return 0
}

setup() {
    {
        echo "# keypoint_corrupt GPU session, $(date -u +%FT%TZ), stages: ${STAGES[*]}, smoke=$SMOKE"
        echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    } | tee -a "$LOG"
    # the pins of fetch_wheels.sh; only what the image lacks is installed
    local need=()
    "$PY" -c "import albumentations" 2>/dev/null || need+=(albumentations==2.0.8)
    "$PY" -c "import pycocotools" 2>/dev/null || need+=(pycocotools==2.0.11)
    "$PY" -c "import kornia" 2>/dev/null || need+=(kornia==0.9.0 kornia-rs==0.2.0)
    [ ${#need[@]} -gt 0 ] && step "install carried wheels" "$PY" -m pip install --quiet --no-index \
        --find-links "$REPO/.whl" "${need[@]}"
    # frost textures for the ImageNet-C parity: looked up, not imported (its import needs
    # pkg_resources; the library only reads its frost/ folder), installed without its requirements
    "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('imagecorruptions') is None)" ||
        step "install carried imagecorruptions" "$PY" -m pip install --quiet --no-index --no-deps \
            --find-links "$REPO/.whl" imagecorruptions==1.1.2
    step "versions" "$PY" -c "import sys, torch, cv2, numpy, albumentations, keypoint_corrupt as kc; \
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name() if torch.cuda.is_available() else '', \
'cv2', cv2.__version__, 'numpy', numpy.__version__, 'albumentations', albumentations.__version__, \
'keypoint_corrupt', kc.__version__)"
}

speed() {
    local base=(benchmark --speed --device "$DEVICE" "${SPEED_OPTS[@]}")
    step "speed fp32" kc "${base[@]}" --out "$WORK/speed-fp32"
    step "speed bf16 channels-last" kc "${base[@]}" --precision bf16 --channels-last --out "$WORK/speed-bf16-cl"
    if [ "$SMOKE" = 0 ]; then
        step "speed bf16 channels-last compile" kc "${base[@]}" --precision bf16 --channels-last --compile \
            --speed-models posenet-dense posenet-depthwise --out "$WORK/speed-bf16-cl-compile"
        step "speed bf16 channels-last cuda-graphs" kc "${base[@]}" --precision bf16 --channels-last \
            --cuda-graphs --speed-models posenet-dense posenet-depthwise --out "$WORK/speed-bf16-cl-graphs"
    fi
}

synth() {
    if [ -f "$STB/.complete" ]; then return 0; fi
    rm -rf "$STB" "$WORK/parts"
    local t0=$SECONDS seq pids=()
    # one process per sequence (the machine has 16 cores), merged afterwards
    for seq in B1Counting B1Random B2Counting B2Random B3Counting B3Random \
        B4Counting B4Random B5Counting B5Random B6Counting B6Random; do
        kc synth-stb --out "$WORK/parts/$seq" --frames-per-sequence "$FRAMES" --sequences "$seq" \
            --seed 7 >/dev/null &
        pids+=($!)
    done
    local failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    mkdir -p "$STB/images" "$STB/labels"
    for part in "$WORK"/parts/*; do
        cp -r "$part"/images/* "$STB/images/" && cp "$part"/labels/* "$STB/labels/" || failed=1
    done
    echo "synthetic STB: 12 sequences x $FRAMES frames in $((SECONDS - t0)) s (failed=$failed)" | tee -a "$LOG"
    [ "$failed" = 0 ] && touch "$STB/.complete"
}

# issue 15, part 1: the torch tests (their CUDA variants run where CUDA is) and the agreement
# tables of the torch kernels with the CPU kernels on the device
torch-test() {
    mkdir -p "$WORK/torch"
    local xdist=() # the image has pytest-xdist: 8 processes share the GPU
    [ "$SMOKE" = 0 ] && "$PY" -c "import xdist" 2>/dev/null && xdist=(-n 8)
    step --cap 180 --save "$WORK/torch/pytest.txt" "pytest torch + corrupt-on" "$PY" -m pytest -q \
        -p no:cacheprovider "${xdist[@]}" "${TORCH_TESTS[@]}"
    step --cap 60 --save "$WORK/torch/parity-reference.md" "parity: the eleven configurations" \
        "$PY" "$REPO/benchmarks/bench_torch.py" --parity --batch "$PARITY_BATCH" --device "$DEVICE"
    step --cap 150 --save "$WORK/torch/parity-imagenet-c.md" "parity: ImageNet-C kernels" \
        "$PY" "$REPO/benchmarks/parity_torch_imagenet_c.py" --device "$DEVICE" "${PARITY_IC_OPTS[@]}"
}

# issue 15, part 2: speed against kornia and the ImageNet-C 15 x 5 grid (images/s), then the
# whole benchmark with corruption on the device vs NumPy corruption vs model-only speed
torch-speed() {
    mkdir -p "$WORK/torch"
    step --cap 180 --save "$WORK/torch/bench_torch.md" "bench_torch vs kornia + ImageNet-C grid" \
        "$PY" "$REPO/benchmarks/bench_torch.py" --device "$DEVICE" --batch "$TORCH_BATCH" --size "$TORCH_SIZE" \
        --rounds "$TORCH_ROUNDS" --json "$WORK/torch/bench_torch.json"
    synth
    local w
    w=$(weights posenet-dense-S-train)
    if [ -z "$w" ]; then # speed does not depend on the weights
        w=$WORK/torch/random-dense.pt
        [ -f "$w" ] || "$PY" -c "import sys; from keypoint_corrupt.models import build_model, save; \
save(build_model('posenet-dense'), sys.argv[1], train_set='S-train', seed=0)" "$w" 2>&1 | tee -a "$LOG"
    fi
    step --cap 60 "model-only speed, dense" kc benchmark --speed --speed-models posenet-dense --device "$DEVICE" \
        "${TORCH_PRECISION[@]}" "${TORCH_SPEED_OPTS[@]}" --out "$WORK/torch/speed-model"
    local common=(--model posenet-dense --weights "$w" --data "$STB" "${TORCH_BENCH_DATA[@]}" --device "$DEVICE"
        "${TORCH_PRECISION[@]}" --batch-size "$TORCH_BENCH_BATCH" --workers "$WORKERS" --no-plots --no-progress)
    step --cap 120 "benchmark, NumPy corruption" kc benchmark "${common[@]}" --out "$WORK/torch/bench-numpy"
    step --cap 120 "benchmark, --corrupt-on $DEVICE" kc benchmark "${common[@]}" --corrupt-on "$DEVICE" \
        --out "$WORK/torch/bench-device"
    step --cap 30 "throughput ratio" "$PY" "$REPO/benchmarks/gpu/summarize.py" --throughput "$WORK"
}
torch() {
    torch-test
    torch-speed
}

# train MODEL...: each model on S-train and S-train*, into $RUNS/<model>-S-train[-star]
train() {
    synth
    local model set epochs
    for model in "$@"; do
        for set in S-train 'S-train*'; do
            if [ "$set" = S-train ]; then epochs=$EPOCHS_PLAIN; else epochs=$EPOCHS_STAR; fi
            # SIGINT: the trainer writes last.pt before it stops, so an overlong run loses nothing
            step "train $model $set" timeout -s INT "$TRAIN_TIMEOUT" "$PY" -m keypoint_corrupt train \
                --model "$model" --data "$STB" --train-set "$set" --epochs "$epochs" --batch-size "$BATCH" \
                --device "$DEVICE" --workers "$WORKERS" --seed 0 --quiet --out "$RUNS/$model-${set/\*/-star}"
        done
    done
}
train-posenet() { train posenet-dense posenet-depthwise; }
train-nerpe() { train nerpe; }

# weights RUN: the run's final model, or the checkpoint of an interrupted one
weights() {
    local run=$RUNS/$1
    if [ -f "$run/model.pt" ]; then echo "$run/model.pt"; elif [ -f "$run/last.pt" ]; then echo "$run/last.pt"; fi
}

bench() {
    local dense star dw
    dense=$(weights posenet-dense-S-train) star=$(weights posenet-dense-S-train-star)
    dw=$(weights posenet-depthwise-S-train)
    if [ -z "$dense" ]; then
        echo "bench: no posenet-dense-S-train weights (run train-posenet in the same call)" | tee -a "$LOG"
        return 0
    fi
    local common=(--data "$STB" --device "$DEVICE" --batch-size "$BATCH" --workers "$WORKERS" --no-progress)
    step "bf16 vs fp32 EPE, trained dense" kc benchmark --speed --model posenet-dense --weights "$dense" \
        --device "$DEVICE" --precision bf16 --channels-last --data "$STB" --check-images "$CHECK_IMAGES" \
        "${SPEED_OPTS[@]}" --out "$WORK/check-bf16"
    step "benchmark dense fp32" kc benchmark --model posenet-dense --weights "$dense" "${common[@]}" \
        --out "$WORK/bench-dense-fp32"
    step "benchmark dense bf16" kc benchmark --model posenet-dense --weights "$dense" "${common[@]}" \
        --precision bf16 --channels-last --out "$WORK/bench-dense-bf16"
    [ -n "$star" ] && step "benchmark dense S-train vs S-train*" kc benchmark --model posenet-dense \
        --weights "$dense" --label "dense S-train" --compare posenet-dense --compare-weights "$star" \
        --compare-label "dense S-train*" "${common[@]}" --out "$WORK/bench-dense-star"
    [ -n "$dw" ] && step "benchmark dense vs depthwise" kc benchmark --model posenet-dense --weights "$dense" \
        --compare posenet-depthwise --compare-weights "$dw" "${common[@]}" --out "$WORK/bench-dense-depthwise"
    return 0
}

echo "| step | exit | seconds |" >"$WORK/steps.md"
echo "| --- | --- | --- |" >>"$WORK/steps.md"
setup
for stage in "${STAGES[@]}"; do "$stage"; done

# summary.md: every step's status, then each run's validation EPE and each report's head
"$PY" "$REPO/benchmarks/gpu/summarize.py" "$WORK" >"$OUT/summary.md" 2>>"$LOG" || echo "summary failed" >>"$LOG"
(cd "$WORK" && find . \( -name '*.md' -o -name '*.json' -o -name '*.csv' -o -name '*.png' -o -name '*.txt' \) \
    -not -path './stb/*' -not -path './parts/*' -print0 | tar czf "$OUT/results.tar.gz" --null -T -)
cat "$OUT/summary.md"
