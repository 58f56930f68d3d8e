"""Do deep models beat the filters? The README's headline: the zoo's trained models (and any checkpoint named)
against the classical filters on the standard benchmarks at sigma 15, 25 and 50, gray and colour, with the
papers' numbers beside, and one image grid of every method on the same crop.

    python bench/headline.py                              (every zoo card with weights, the sets in paths.data_dir)
    python bench/headline.py --sets set12 --models zoo:dncnn_authors@25 --filters bm3d nlm wiener

One ``evaluate.py`` per benchmark and sigma runs every filter and every model that claims that sigma (a card's
scored sigmas, or ``@sigma`` after a checkpoint; blind models at all three), on the same noisy images (seed
12345). Writes into ``--out`` (default bench/results/headline/): headline.md (the table, then the command of
every column), headline.json (every score) and headline_grid.png (the first image of the first benchmark at
sigma 25: every method on the same zoomed crop).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denoise import zoo  # noqa: E402
from denoise.checkpoint import load_network  # noqa: E402
from denoise.data.catalog import default_data_dir  # noqa: E402
from denoise.data.console import Steps  # noqa: E402
from denoise.tasks.compose import compose_config  # noqa: E402
from denoise.tasks.evaluation import evaluate  # noqa: E402
from denoise.tasks.zoo_pack import BENCHMARKS, BLIND_SIGMAS  # noqa: E402

GRAY_SETS, COLOUR_SETS = BENCHMARKS[True], BENCHMARKS[False]
#: the filters of the headline (BM3D, the strongest; NLM and the adaptive Wiener filter, the common baselines)
DEFAULT_FILTERS = ("bm3d", "nlm", "wiener")


def card_sigmas(card: dict[str, Any]) -> list[float] | None:
    """The sigmas a card claims: those of its scores (``bsd68_s25``), or None (blind, or not scored: every one)."""
    sigmas = sorted({float(key.rsplit("_s", 1)[1]) for key in (card.get("scores") or {}) if "_s" in key})
    return sigmas or None


def chosen_models(names: list[str] | None) -> list[tuple[str, list[float] | None]]:
    """``(checkpoint, sigmas or None)``: the names given (``zoo:x@25``, ``path.ckpt``), else every card with
    weights."""
    if names:
        return [(n.split("@")[0], [float(n.split("@")[1])] if "@" in n else None) for n in names]
    trained = {name: card for name, card in zoo.entries().items() if card.get("file") or card.get("url")}
    return [(f"zoo:{name}", card_sigmas(card)) for name, card in trained.items()]


def channels_of(checkpoint: str) -> int:
    return int(load_network(checkpoint)[1].get("in_channels", 3))


def run_one(
    benchmark: Path, sigma: float, filters: list[str], models: list[str], grid: bool, work: Path
) -> tuple[dict[str, Any], list[str]]:
    gray = benchmark.name in GRAY_SETS
    overrides = [
        f"data.test_dirs=[{benchmark}]", f"data.grayscale={str(gray).lower()}", f"noise.sigma={sigma:g}",
        f"filters=[{','.join(filters)}]", f"ckpt_paths=[{','.join(models)}]", f"grid_images={1 if grid else 0}",
        "seed=12345",
    ]  # fmt: skip
    results = evaluate(compose_config("evaluate", overrides, work / f"{benchmark.name}-{sigma:g}"))
    return results, overrides


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = "paths.data_dir: set12/ bsd68/ ... (default: DENOISE_DATA, else ./data)"
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help=where)
    parser.add_argument("--sets", nargs="+", default=[*GRAY_SETS, *COLOUR_SETS])
    parser.add_argument("--sigmas", nargs="+", type=float, default=list(BLIND_SIGMAS))
    parser.add_argument("--filters", nargs="+", default=list(DEFAULT_FILTERS))
    parser.add_argument("--models", nargs="*", help="checkpoints (zoo:<name>, files), each optionally @sigma")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "headline")
    args = parser.parse_args()
    sets = [args.data_dir / name for name in args.sets if (args.data_dir / name).is_dir()]
    if not sets:
        parser.error(f"none of {args.sets} is under {args.data_dir} (--data-dir: the folder with set12/ bsd68/ ...)")
    models = [(path, sigmas, channels_of(path)) for path, sigmas in chosen_models(args.models)]
    # the papers' numbers: the shipped cards' and the active zoo's (DENOISE_ZOO: a team's, which may lack them)
    cards = (yaml.safe_load(zoo.INDEX.read_text()) or {}).get("models", {}) | zoo.entries()
    args.out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, dict[str, float]]] = {}  # method -> "set12_s25" -> psnr/ssim
    commands, grid = [], None
    with (
        tempfile.TemporaryDirectory() as tmp,
        Steps("headline", len(sets) * len(args.sigmas), "evaluate.py runs") as progress,
    ):
        for benchmark in sets:
            gray = benchmark.name in GRAY_SETS
            for sigma in args.sigmas:
                chosen = [p for p, sig, ch in models if (ch == 1) == gray and (sig is None or sigma in sig)]
                want_grid = grid is None and sigma == 25
                results, overrides = run_one(benchmark, sigma, args.filters, chosen, want_grid, Path(tmp))
                key = f"{benchmark.name}_s{sigma:g}"
                scores.setdefault("noisy input", {})[key] = results["noisy"]
                labels = results.get("model_labels", {})
                for label, row in results["methods"].items():
                    name = f"{label.split(' (')[0]} ({labels[label]})" if label in labels else label
                    scores.setdefault(name, {})[key] = {"psnr": row["psnr"], "ssim": row["ssim"]}
                commands.append(f"python evaluate.py {' '.join(overrides)}")
                if want_grid:
                    found = sorted(Path(results["run_dir"]).glob("grid_*.png"))
                    if found:
                        grid = args.out / "headline_grid.png"
                        shutil.copyfile(found[0], grid)
                progress.advance(1, key)
    columns = [f"{b.name}_s{s:g}" for b in sets for s in args.sigmas]
    papers = {f"{name} (paper)": {**card.get("paper", {})} for name, card in cards.items() if card.get("paper")} | {
        "BM3D (papers)": {k: v for card in cards.values() for k, v in (card.get("bm3d") or {}).items()}
    }
    write_outputs(args.out, columns, scores, papers, commands, grid)
    return 0


def cell(score: Any) -> str:
    if isinstance(score, dict):
        return f"{score['psnr']:.2f} / {score['ssim']:.4f}"
    return "-" if score is None else f"{score:.2f}"


def write_outputs(out: Path, columns: list[str], scores: dict, papers: dict, commands: list[str], grid: Path | None):
    def paper_value(row: dict[str, float], column: str) -> float | None:
        return row.get(column, row.get(column.split("_s")[0]) if column.endswith("_s25") else None)

    header = "| method | " + " | ".join(c.replace("_s", ", sigma ") for c in columns) + " |"
    lines = [header, "|" + " --- |" * (len(columns) + 1)]
    ranked = sorted(scores, key=lambda m: -sum(s["psnr"] for s in scores[m].values()) / max(len(scores[m]), 1))
    for method in ranked:
        lines.append(f"| {method} | " + " | ".join(cell(scores[method].get(c)) for c in columns) + " |")
    for name, row in papers.items():
        values = [paper_value(row, c) for c in columns]
        if any(v is not None for v in values):
            lines.append(f"| *{name}* | " + " | ".join(cell(v) for v in values) + " |")
    lines += ["", "PSNR (dB) / SSIM; papers' rows: PSNR as published.", "", "Each column:", ""]
    lines += [f"    {command}" for command in commands]
    (out / "headline.md").write_text("\n".join(lines) + "\n")
    (out / "headline.json").write_text(json.dumps({"scores": scores, "papers": papers, "commands": commands}, indent=2))
    table = Table(title="Do deep models beat the filters? (PSNR dB / SSIM)")
    table.add_column("method")
    for column in columns:
        table.add_column(column, justify="right")
    for method in ranked:
        table.add_row(method, *(cell(scores[method].get(c)) for c in columns))
    Console().print(table)
    print(f"wrote {out / 'headline.md'}, headline.json" + (f", {grid.name}" if grid else ""))


if __name__ == "__main__":
    raise SystemExit(main())
