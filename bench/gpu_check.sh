#!/usr/bin/env bash
# The GPU check: what a CPU cannot show, in one command of at most 3 minutes on one H100/H200.
#
#   bash bench/gpu_check.sh            (on a machine with the GPU; DATA_DIR names the test sets, see below)
#   QUICK=1 bash bench/gpu_check.sh    (the same steps with tiny settings on whatever device there is: a CPU smoke
#                                       test of this script, run by the test suite, about 2 minutes on 2 cores)
#
# DATA_DIR holds set12/ bsd68/ train400/ and reference/dncnn_sigma25_gray.pt (the DnCNN authors' weights, as a
# plain state dict); by default the project's data/ (paths.data_dir), else ../shared/data where a checkout has it.
# A step whose data is missing is reported as skipped, not failed.
#
# Steps, in this order, each under its own time limit (measured on an H200 with a margin for CUDA start-up, cuDNN
# autotuning and the first compile) and all within a 180-second budget, every figure the median of 3 runs after a
# warm-up at the shape it measures:
#   overhead      train.py's path against a plain PyTorch loop: DnCNN-S (b128, 40x40, gray) and NAFNet-small (b16,
#                 128x128) in bf16, then the host-bound tiny model; goal <= 1.05; host syncs per step audited
#   compiled      the same for DnCNN-S with model.compile=true: goal <= 1.05, and >= 120 steps/s through train.py
#   tiling        NAFNet and RED30 on a 12 MP photo: whole against 512-pixel tiles, 2/4/8 a forward, bf16; goal:
#                 some tile batch at >= 0.8x the whole-image speed and <= 1/10 of its peak memory
#   parity        DnCNN (authors' weights) on Set12 and BSD68 through evaluate.py on the GPU, fp32 and bf16; the
#                 fp32 scores must equal the CPU's (bench/reference/parity_cpu.json) within 1e-4
# Files (at most 8) into $OUT, else bench/results/gpu/:
#   summary.json   every figure with its goal and met / not met, each step's exit status and seconds
#   summary.txt    the same as a table
#   device.txt     the GPU, torch and Lightning versions
#   logs.tar.gz    every step's log and JSON
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/job.sh
job_setup bench/results/gpu
budget=${BUDGET_S:-180}
find_data set12  # exported: bench/overhead.py looks for Train400 there too

python3 - > "$out/device.txt" <<'EOF'
import torch, lightning
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"{name} | torch {torch.__version__} | lightning {lightning.__version__}")
EOF
cat "$out/device.txt"
device=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
: > "$work/steps.txt"

step() {  # step NAME SECONDS COMMAND...: run under min(limit, the budget left), log to the work folder
    local name=$1 limit=$2
    shift 2
    local left=$((budget - (SECONDS - started)))
    if [ "$left" -lt "$limit" ]; then limit=$left; fi
    if [ "$limit" -le 5 ]; then
        echo "$name skipped 0" >> "$work/steps.txt"
        echo "=== $name: skipped, the check's ${budget}-second budget is spent"
        return
    fi
    local start=$SECONDS
    echo "=== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" > "$work/$name.log" 2>&1
    local status=$?
    tail -n 20 "$work/$name.log"
    echo "$name $status $((SECONDS - start))" >> "$work/steps.txt"
    echo "$name: exit $status, $((SECONDS - start)) s"
}

if [ "$quick" = 1 ]; then
    # the same code paths, tiny: CPU parity on Set12 against the stored CPU scores, 1 round of a few steps, a
    # small photo
    parity=(--devices "$device" --sets set12)
    overhead=(--models host --steps 40 --warmup 10 --rounds 1)
    compiled=(--models host --steps 24 --warmup 8 --rounds 1 --compile)
    tiling=(--models rednet_small --megapixels 0.3 --tile 256 --tile-batches 2 --precision fp32 --repeats 1)
    limits=(240 120 300 120)
    budget=${BUDGET_S:-900}
else
    parity=(--devices cuda --sets set12 bsd68)
    overhead=(--models dncnn nafnet_small host --steps 100 --warmup 30 --rounds 3 --sync-audit)
    compiled=(--models dncnn --steps 100 --warmup 30 --rounds 3 --compile)
    tiling=(--models nafnet rednet --megapixels 12 --tile 512 --tile-batches 2 4 8 --precision bf16 --repeats 3)
    limits=(35 75 90 45)  # parity overhead compiled tiling: about 20 60 60 35 s on an H200 (estimates)
fi

step overhead "${limits[1]}" python3 bench/overhead.py --device "$device" "${overhead[@]}" --json "$work/overhead.json"
step compiled "${limits[2]}" python3 bench/overhead.py --device "$device" "${compiled[@]}" \
    --json "$work/compiled.json"
step tiling "${limits[3]}" python3 bench/tiling.py --device "$device" "${tiling[@]}" --json "$work/tiling.json"
# last: it was already right on the H200 (the first run); a spent budget skips it rather than a goal above
if [ -f "$data/reference/dncnn_sigma25_gray.pt" ] && [ -d "$data/set12" ]; then
    step parity "${limits[0]}" python3 bench/parity.py "${parity[@]}" --data-dir "$data" \
        --reference bench/reference/parity_cpu.json --json "$work/parity.json"
else
    echo "parity skipped 0" >> "$work/steps.txt"
    echo "=== parity: skipped, $data has no set12/ or reference/dncnn_sigma25_gray.pt (set DATA_DIR)"
fi

python3 bench/gpu_summary.py "$work" --device-file "$out/device.txt" --seconds $((SECONDS - started)) \
    --json "$out/summary.json" --text "$out/summary.txt"
status=$?
tar -czf "$out/logs.tar.gz" -C "$work" .
echo "wrote $out (summary.json, summary.txt, device.txt, logs.tar.gz) in $((SECONDS - started)) s"
exit $status
