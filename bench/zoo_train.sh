#!/usr/bin/env bash
# The zoo in one GPU job: every shippable paper recipe trained at once on one GPU, each packed into a card (fp16
# weights where the scores hold, sha256, scores on Set12/BSD68 at every sigma it claims, beside the papers' and
# BM3D's), and the README's table rows; at most 8 minutes on one H100/H200.
#
#   bash bench/zoo_train.sh            (on the GPU machine; DATA_DIR holds train400/ set12/ bsd68/)
#   QUICK=1 bash bench/zoo_train.sh    (the very same path, tiny steps and data, on a CPU: a smoke test, tested)
#
# Recipes: dncnn_s_gray25, dncnn_b_gray, red30_gray25, ffdnet_gray, and ffdnet_color where DATA_DIR has cbsd432/
# cbsd68/ kodak24/ mcmaster/ (each at most 10 MB of weights; MWCNN's 32 MB keep its recipe and card until they have
# a hosted URL), through `python train.py -m launcher=joblib`: one process each, side by side on the GPU, each
# with a 5-minute training budget (trainer.max_time, which holds inside an epoch) so that training, testing and
# packing end within 8 minutes of the start. The joblib launcher comes from bench/wheels/ where it is missing.
# Files (at most 8) into $OUT, else bench/results/zoo/: index.yaml (the zoo's cards, to replace
# denoise/zoo/index.yaml), the shipped weights (<card>.ckpt, 4 or 5), zoo_table.md (the README's rows and the
# goals: DnCNN-S BSD68 sigma 25 >= 29.0 dB; every model above BM3D at every sigma it claims), logs.tar.gz (every
# run's train.log, results.json, csv metrics, the packing logs and zoo_goals.json).
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/job.sh
job_setup bench/results/zoo
ensure_packages || exit 2
find_data train400
for needed in train400 set12 bsd68; do
    if [ ! -d "$data/$needed" ]; then echo "error: $data/$needed is missing (set DATA_DIR)" >&2; exit 2; fi
done

recipes=(dncnn_s_gray25 dncnn_b_gray red30_gray25 ffdnet_gray)
declare -A card=([dncnn_s_gray25]=dncnn_gray_s25 [dncnn_b_gray]=dncnn_gray_blind [red30_gray25]=red30_gray_s25
                 [ffdnet_gray]=ffdnet_gray_blind [ffdnet_color]=ffdnet_color_blind)
colour_sets=(cbsd432 cbsd68 kodak24 mcmaster)
if [ "$quick" = 1 ]; then
    # the same recipes, launcher, packing and table on a CPU: a few images of each set, their central 96x96 (the
    # packing scores every set at every sigma, BM3D too: whole Kodak photos would take minutes), a few seconds each
    mkdir -p "$work/data"
    for set in train400 set12 bsd68 cbsd68 kodak24 mcmaster; do
        [ -d "$data/$set" ] || continue
        find "$data/$set" -maxdepth 1 -type f | sort | head -n "$([ $set = train400 ] && echo 8 || echo 2)" \
            | crop_into "$work/data/$set"
    done
    if [ -d "$data/kodak24" ] && [ ! -d "$data/cbsd432" ]; then  # smoke only: colour photos to train on
        find "$data/kodak24" -maxdepth 1 -type f | sort | tail -n 8 | crop_into "$work/data/cbsd432"
    fi
    data=$work/data
    sized=(trainer.accelerator=cpu trainer.precision=32-true data.on_device=false model.compile=false
           data.batch_size=4 data.samples_per_epoch=16 trainer.max_epochs=1 trainer.max_time=00:00:00:10)
    train_limit=600; pack_limit=600
else
    sized=(trainer.max_time=00:00:05:00)
    train_limit=380; pack_limit=$((470 - 380))
fi
data=$(cd "$data" && pwd)
missing=$(for set in "${colour_sets[@]}"; do [ -d "$data/$set" ] || printf '%s/ ' "$set"; done)
if [ -z "$missing" ]; then
    recipes+=(ffdnet_color)
else
    echo "ffdnet_color skipped: no ${missing}under $data (cbsd432/ is BSDS500's colour images less CBSD68's)"
fi

# the team zoo this job fills: the shipped cards (papers' and BM3D's numbers) plus the new weights and scores
mkdir -p "$work/zoo"
cp denoise/zoo/index.yaml "$work/zoo/index.yaml"
export DENOISE_ZOO=$work/zoo/index.yaml

echo "=== training ${recipes[*]} at once (limit ${train_limit}s)"
list=$(IFS=,; echo "${recipes[*]}")
timeout "$train_limit" python3 train.py -m launcher=joblib "experiment=$list" "paths.data_dir=$data" logger=csv \
    "${sized[@]}" "hydra.sweep.dir=$work/runs" > "$work/train.log" 2>&1
echo "training: exit $?, $((SECONDS - started)) s"
tail -n 15 "$work/train.log"

echo "=== packing every finished run (limit ${pack_limit}s)"
for run in "$work"/runs/*/; do
    recipe=$(sed -n 's/^- experiment=//p' "$run/.hydra/overrides.yaml")
    [ -n "$recipe" ] || continue
    timeout "$pack_limit" python3 -m denoise.cli.zoo add "$run" --name "${card[$recipe]}" --data-dir "$data" \
        > "$work/pack_${card[$recipe]}.log" 2>&1 &
done
wait
for log in "$work"/pack_*.log; do echo "$(basename "$log"): $(tail -n 1 "$log")"; done

python3 bench/zoo_table.py "$DENOISE_ZOO" --markdown "$out/zoo_table.md" --json "$work/zoo_goals.json"
cp "$DENOISE_ZOO" "$out/index.yaml"
cp "$work"/zoo/*.ckpt "$out/" 2>/dev/null
tar -czf "$out/logs.tar.gz" -C "$work" --exclude='*.ckpt' --exclude='*.npy' train.log runs zoo_goals.json \
    $(cd "$work" && ls pack_*.log 2>/dev/null)
echo "wrote $out ($(ls "$out" | tr '\n' ' ')) in $((SECONDS - started)) s"
