#!/usr/bin/env bash
# The GPU check (issue 12): everything that a CPU cannot show, in one run of at most 8 minutes on one H100/H200.
#
#   here:        bash ../shared/gpu/bundle.sh            (wheels and reference data into .gpu/)
#   on the GPU:  source .gpu/setup.sh && bash bench/gpu_check.sh
#
# It writes every JSON and log into $OUT (the device tool's output folder) or bench/results/gpu/:
#   parity.json           evaluate.py of the DnCNN authors' weights on Set12 and BSD68, CPU against GPU (fp32
#                         within 1e-4) and the GPU with the network in bf16
#   mixed_precision.json  fp32 / bf16 / bf16 + channels_last training steps of PRIDNet and MWCNN
#   overhead_cuda.json    train.py's path against a plain PyTorch loop (DnCNN, NAFNet-small, bf16; goal <= 1.05),
#                         with host syncs per step counted by torch.cuda.set_sync_debug_mode
#   overhead_cuda_compile.json   the same for DnCNN with model.compile=true (works, and its speed-up)
#   inference.json        tiled against whole 12-MP inference (NAFNet, RED30)
#   inference_batched.json   the same with 8 tiles a forward in bf16 (issue 17: goal >= 0.8x the whole speed at
#                         a tenth of its memory or less)
#   dncnn_train/          python train.py trainer=gpu model=dncnn on Train400, tested on BSD68 (results.json,
#                         csv/metrics.csv, train.log): steps/s, minutes, PSNR and SSIM
#   summary.txt           every step's exit status and wall time
# Each step has its own time limit (480 s in all), so one hang cannot eat the others' time.
# QUICK=1 runs every step with tiny settings on whatever device there is (a smoke test of this script, e.g. on a CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled COLUMNS=160
quick=${QUICK:-0}
device=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
summary="$out/summary.txt"
: > "$summary"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, record status and time
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "=== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local status=$?
    tail -n 25 "$out/$name.log"
    echo "$name: exit $status, $((SECONDS - start)) s" | tee -a "$summary"
}

python3 - <<'EOF' | tee "$out/device.txt"
import torch, lightning
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"{name} | torch {torch.__version__} | lightning {lightning.__version__}")
EOF

if [ "$quick" = 1 ]; then
    sets=(set12); mp_args=(--models mwcnn --batch 1 --size 64 --warmup 1 --steps 2)
    oh_args=(--models dncnn --steps 8 --rounds 1); inf_args=(--models rednet_small --megapixels 0.5)
    train_time=00:00:00:20; train_size=(data.batch_size=16 data.samples_per_epoch=64 trainer.max_epochs=1)
    compile_limit=300; compile_steps=8  # inductor on a CPU compiles slowly
else
    sets=(set12 bsd68); mp_args=(); oh_args=(--steps 200 --rounds 3); inf_args=(--models nafnet rednet)
    train_time=00:00:01:45; train_size=(data.batch_size=128 data.samples_per_epoch=128000 trainer.max_epochs=30)
    compile_limit=90; compile_steps=200
fi

step parity 50 python3 bench/parity.py --sets "${sets[@]}" --json "$out/parity.json"
step mixed_precision 40 python3 bench/mixed_precision.py --device "$device" "${mp_args[@]}" \
    --json "$out/mixed_precision.json"
step overhead 90 python3 bench/overhead.py --device "$device" "${oh_args[@]}" --sync-audit \
    --json "$out/overhead_$device.json"
step overhead_compile "$compile_limit" python3 bench/overhead.py --device "$device" --models dncnn --compile --rounds 1 \
    --steps "$compile_steps" --json "$out/overhead_${device}_compile.json"
step inference 35 python3 bench/inference.py --device "$device" "${inf_args[@]}" --json "$out/inference.json"
step inference_batched 30 python3 bench/inference.py --device "$device" "${inf_args[@]}" --tile-batch 8 \
    --precision "$([ "$device" = cuda ] && echo bf16 || echo fp32)" --json "$out/inference_batched.json"
# DnCNN-S on Train400 (40x40 gray crops, batch 128), tested on BSD68; reference: BM3D 28.57 dB, the authors' 29.23
step dncnn_train 145 python3 train.py trainer=gpu "trainer.accelerator=$([ "$device" = cuda ] && echo gpu || echo cpu)" \
    model=dncnn data.grayscale=true "data.train_dirs=[../shared/data/train400]" "data.val_dirs=[../shared/data/set12]" \
    "data.test_dirs=[../shared/data/bsd68]" data.patch_size=40 data.on_device=true "${train_size[@]}" \
    "trainer.max_time=$train_time" trainer.log_every_n_steps=50 logger=csv "hydra.run.dir=$out/dncnn_train"
python3 - "$out" <<'EOF' | tee -a "$summary"
import json, sys
from pathlib import Path
out = Path(sys.argv[1]) / "dncnn_train"
results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
keys = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy", "global_step", "fit_seconds")
summary = {k: results.get(k) for k in keys}
if results.get("fit_seconds"):
    summary["steps_per_s"] = results["global_step"] / results["fit_seconds"]
print("dncnn_train:", summary)
EOF
echo "wrote $out"
