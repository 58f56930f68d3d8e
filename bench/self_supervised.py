"""Self-supervised objectives against supervised training: the same network, steps and data, only the objective
differs (Noise2Noise, Neighbor2Neighbor, Noise2Void), on the CPU at the quickstart's scale; and AP-BSN, which
needs its own network, at its CPU recipe's budget (``experiment=apbsn_cpu``: 7 minutes of training, whatever the
steps that makes on this machine).

Settings: the quickstart (RED20 with 16 channels, Adam 2e-3, 1,000 steps of 8 crops of 48x48, cosine), each run a
fresh ``python train.py`` process; ``apbsn``: the blind-spot network of 32 channels and 4 modules, crops of 60,
``--apbsn-minutes`` of training (7, the recipe's). Data:

* ``gaussian``: scikit-image's embedded photos with Gaussian noise of sigma 25 (test: astronaut, chelsea);
* ``poisson``: the same photos with Poisson-Gaussian noise (a = 0.01, sigma 5);
* ``sidd``: the 12 real SIDD pairs of ``../shared/data/sidd_samples`` (data=paired: 10 train, val and test 1
  each; Noise2Noise needs a second shot of each scene, which these samples lack, so it is left out).

    python bench/self_supervised.py [--sets gaussian poisson sidd] [--objectives ...] [--steps 1000] [--json ...]

``--objectives`` reruns some objectives only and replaces their rows in an existing ``--json`` (same steps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from denoise.evaluation.report import write_json

ROOT = Path(__file__).resolve().parents[1]
SIDD = ROOT.parent / "shared" / "data" / "sidd_samples"
OBJECTIVES = ("supervised", "noise2noise", "neighbor2neighbor", "noise2void", "apbsn")
SETS = {
    "gaussian": ["noise.sigma=25"],
    "poisson": ["noise=poisson_gaussian", "noise.a=0.01", "noise.sigma=5"],
    "sidd": [
        "data=paired",
        f"data.noisy_dir={SIDD / 'noisy'}",
        f"data.clean_dir={SIDD / 'clean'}",
        "data.patch_size=48",
        "data.batch_size=8",
        "data.datasets.paired.val_fraction=0.1",
        "data.datasets.paired.test_fraction=0.1",
        "data.num_workers=0",
    ],
}


def run(dataset: str, objective: str, steps: int, out: Path, apbsn_minutes: float = 7.0) -> dict:
    samples = steps * 8 // 10  # 10 epochs of batches of 8, as the quickstart
    overrides = [*SETS[dataset], f"objective={objective}", f"data.samples_per_epoch={samples}", "logger=none"]
    if objective == "apbsn":  # its recipe: its own network, crops of 60, a clock instead of a step count
        data = [] if dataset == "sidd" else ["data=synthetic"]  # the recipe's default data is a noisy folder
        seconds = round(apbsn_minutes * 60)
        kept = [o for o in SETS[dataset] if not o.startswith("data.patch_size")]
        overrides = [
            "experiment=apbsn_cpu",
            *kept,
            *data,
            "data.patch_size=60",
            "data.eval_crop=null",
            f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            "logger=none",
        ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{dataset}/{objective} failed:\n{done.stderr[-3000:]}")
    results = json.loads((out / "results.json").read_text())
    return {
        "set": dataset,
        "objective": objective,
        "psnr": results["test/psnr"],
        "ssim": results["test/ssim"],
        "psnr_noisy": results["test/psnr_noisy"],
        "ssim_noisy": results["test/ssim_noisy"],
        "steps": results["global_step"],
        "seconds": time.perf_counter() - start,
        "overrides": overrides,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--apbsn-minutes", type=float, default=7.0, help="AP-BSN's training clock (its recipe: 7)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "self_supervised.json")
    args = parser.parse_args()
    rows = []
    if set(args.objectives) != set(OBJECTIVES) and args.json.is_file():  # keep the other rows of the same run
        kept = json.loads(args.json.read_text())
        if kept.get("steps") == args.steps:
            rows = [row for row in kept["rows"] if row["objective"] not in args.objectives]
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.sets:
            for objective in args.objectives:
                if dataset == "sidd" and objective == "noise2noise":
                    continue  # the samples hold one noisy shot per scene
                row = run(dataset, objective, args.steps, Path(tmp) / f"{dataset}-{objective}", args.apbsn_minutes)
                rows.append(row)
                console.print(f"{dataset} {objective}: {row['psnr']:.2f} dB ({row['seconds']:.0f} s)")
    order = {(d, o): i for i, (d, o) in enumerate((d, o) for d in SETS for o in OBJECTIVES)}
    rows.sort(key=lambda row: order[(row["set"], row["objective"])])
    supervised = {row["set"]: row["psnr"] for row in rows if row["objective"] == "supervised"}
    table = Table(
        title=f"test PSNR / SSIM after {args.steps} steps (RED20-16, batch 8 of 48x48; apbsn: its recipe, "
        f"{args.apbsn_minutes:g} minutes), this CPU"
    )
    for column in ("data", "objective", "PSNR dB", "SSIM", "vs supervised dB", "gain dB", "steps", "seconds"):
        table.add_column(column, justify="left" if column in ("data", "objective") else "right")
    for row in rows:
        row["delta_vs_supervised"] = row["psnr"] - supervised.get(row["set"], float("nan"))
        table.add_row(
            row["set"], row["objective"], f"{row['psnr']:.2f}", f"{row['ssim']:.4f}",
            f"{row['delta_vs_supervised']:+.2f}", f"{row['psnr'] - row['psnr_noisy']:+.2f}", str(row["steps"]),
            f"{row['seconds']:.0f}",
        )  # fmt: skip
    console.print(table)
    write_json(
        args.json,
        {"benchmark": "self_supervised", "steps": args.steps, "apbsn_minutes": args.apbsn_minutes, "rows": rows},
    )
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
