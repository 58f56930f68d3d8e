# Shared by the one-command GPU jobs (gpu_check.sh, zoo_train.sh), sourced after `cd` to the project's root:
# the output folder, a work folder removed on exit, the environment, and the data folder.
#   job_setup DEFAULT_OUT     sets out (from $OUT), work, quick (from $QUICK), started
#   find_data SUBFOLDER       sets data: $DATA_DIR, else data/, else ../shared/data where a checkout has it
job_setup() {
    out=${OUT:-$1}
    mkdir -p "$out"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    export PYTHONUNBUFFERED=1 WANDB_MODE=disabled COLUMNS=160
    quick=${QUICK:-0}
    started=$SECONDS
}

find_data() {
    data=${DATA_DIR:-}
    if [ -z "$data" ]; then
        for candidate in data ../shared/data; do
            if [ -d "$candidate/$1" ]; then data=$candidate; break; fi
        done
    fi
    data=${data:-data}
    export DATA_DIR=$data
}
