#!/usr/bin/env bash
# The GPU measurements of issues 5 (training) and 6 (Table I, bf16 check, whole-benchmark
# throughput), scripted so that a session lent a GPU spends its device time measuring, not
# typing. Every step is logged with its command and wall time; a failing step is recorded
# and the next one still runs.
#
#   bash benchmarks/gpu/fetch_wheels.sh          # here, once: wheels the device image lacks
#   run(command="bash benchmarks/gpu/session.sh train-posenet bench", carry=[".whl"])
#   run(command="bash benchmarks/gpu/session.sh speed train-nerpe", carry=[".whl"])
#   bash benchmarks/gpu/session.sh --smoke all   # here, on the CPU: checks the script itself
#
# Each call must end within the device's 10 minutes, and a machine may be handed back
# between calls (checkpoints live on it only), so a stage that needs another's output runs
# in the same call. Stages: setup (always); speed (Table I with random weights: fp32,
# bf16 + channels-last, + torch.compile, + CUDA graphs); train-posenet and train-nerpe
# (a synthetic STB-layout set; S-train and S-train* each); bench (after train-posenet in
# the same call: bf16-vs-fp32 EPE on trained dense weights, the whole robustness benchmark
# with its images/s, Table II-style comparisons). Results go to $OUT (the device tool's
# folder) or ./gpu-out: session.log, summary.md and results.tar.gz (reports, histories,
# curves; no checkpoints). Sizes: FRAMES, EPOCHS_PLAIN, EPOCHS_STAR, BATCH, WORKERS, and
# TRAIN_TIMEOUT (seconds per run; on expiry the run is interrupted and keeps last.pt).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
SMOKE=0
STAGES=()
for arg in "$@"; do
    case $arg in
        --smoke) SMOKE=1 ;;
        all) STAGES+=(speed train-posenet bench train-nerpe) ;;
        speed | train-posenet | train-nerpe | bench) STAGES+=("$arg") ;;
        *) echo "unknown argument: $arg (stages: speed train-posenet train-nerpe bench all; option: --smoke)" >&2; exit 2 ;;
    esac
done
[ ${#STAGES[@]} -gt 0 ] || { echo "name at least one stage: speed train-posenet train-nerpe bench all" >&2; exit 2; }

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
else
    DEVICE=cuda FRAMES=${FRAMES:-120} EPOCHS_PLAIN=${EPOCHS_PLAIN:-12} EPOCHS_STAR=${EPOCHS_STAR:-4}
    BATCH=${BATCH:-64} WORKERS=${WORKERS:-12} TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-100}
    SPEED_OPTS=()
    CHECK_IMAGES=480
fi
STB=$WORK/stb
RUNS=$WORK/runs

kc() { "$PY" -m keypoint_corrupt "$@"; }

# step NAME COMMAND...: run, log command, exit status and seconds; never stop the session.
step() {
    local name=$1
    shift
    local t0=$SECONDS
    printf '\n### %s\n$ %s\n' "$name" "$*" | tee -a "$LOG"
    "$@" 2>&1 | tail -n 40 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    printf -- '-> %s: exit %s in %s s\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$LOG"
    echo "| $name | $rc | $((SECONDS - t0)) |" >>"$WORK/steps.md"
    return 0
}

setup() {
    {
        echo "# keypoint_corrupt GPU session, $(date -u +%FT%TZ), stages: ${STAGES[*]}, smoke=$SMOKE"
        echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    } | tee -a "$LOG"
    if ! "$PY" -c "import albumentations" 2>/dev/null; then
        step "install carried wheels" "$PY" -m pip install --quiet --no-index --find-links "$REPO/.whl" \
            albumentations==2.0.8
    fi
    step "versions" "$PY" -c "import sys, torch, cv2, numpy, albumentations, keypoint_corrupt as kc; \
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
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
(cd "$WORK" && find . \( -name '*.md' -o -name '*.json' -o -name '*.csv' -o -name '*.png' \) \
    -not -path './stb/*' -not -path './parts/*' -print0 | tar czf "$OUT/results.tar.gz" --null -T -)
cat "$OUT/summary.md"
