# Shared by the one-command GPU jobs (gpu_check.sh, zoo_train.sh), sourced after `cd` to the project's root:
# the output folder, a work folder removed on exit, the environment, the packages, and the data folder.
#   job_setup DEFAULT_OUT     sets out (from $OUT), work, quick (from $QUICK), started
#   ensure_packages           Hydra's joblib launcher, from bench/wheels/ where the machine lacks it
#   find_data SUBFOLDER       sets data: $DATA_DIR, else data/, else ../shared/data where a checkout has it
#   crop_into FOLDER          the central 96x96 of each image named on stdin, as a PNG of the same name (QUICK=1)
job_setup() {
    out=${OUT:-$1}
    mkdir -p "$out"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    export PYTHONUNBUFFERED=1 WANDB_MODE=disabled COLUMNS=160
    quick=${QUICK:-0}
    started=$SECONDS
}

# The GPU machine has no network and only what ../shared/gpu/bundle.sh adds (no joblib launcher): the pure-Python
# wheels in bench/wheels/ go into the work folder, ahead on PYTHONPATH. JOB_VENDOR_WHEELS=1 installs them even
# where the packages are present (the smoke test does, so that the GPU's path is the tested one).
ensure_packages() {
    if [ "${JOB_VENDOR_WHEELS:-0}" != 1 ] &&
        python3 -c "import joblib, hydra_plugins.hydra_joblib_launcher" 2>/dev/null; then
        return 0
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$work/site" \
        bench/wheels/*.whl || { echo "error: could not install bench/wheels/*.whl" >&2; return 1; }
    export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
    echo "installed $(cd bench/wheels && ls ./*.whl | tr '\n' ' ')into $work/site"
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

crop_into() {  # the file names come on stdin, so the script goes in -c
    python3 -c '
import sys
from pathlib import Path

from PIL import Image

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
for line in sys.stdin:
    source = Path(line.strip())
    with Image.open(source) as image:
        left, top = (image.width - 96) // 2, (image.height - 96) // 2
        image.crop((left, top, left + 96, top + 96)).save(folder / f"{source.stem}.png")
' "$1"
}
