"""Packing a finished training run into a zoo card: ``denoise-zoo add RUN_DIR``.

The run's best checkpoint (``results.json``'s ``ckpt_path``) becomes a weights file of the network alone, in fp16
where every score stays within :data:`FP16_TOLERANCE_DB` of the fp32 weights' (else fp32), scored by
``evaluate.py`` on the standard benchmarks of its kind (gray: Set12 and BSD68; colour: CBSD68, Kodak24 and
McMaster) at every sigma it claims (its fixed sigma; 15, 25 and 50 within a blind range), under the scoring
convention of ``metrics.*``. The card records the network, the recipe and its overrides, the GPU, minutes and
steps, those scores beside the papers' and BM3D's already on the card, the file and its sha256. Cards go into the
index that ``DENOISE_ZOO`` names (a team's own zoo), else the shipped one; the weights beside it.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

try:
    import fcntl
except ImportError:  # Windows: one packer at a time
    fcntl = None  # type: ignore[assignment]
from omegaconf import OmegaConf

from denoise import zoo
from denoise.checkpoint import load_network
from denoise.data.catalog import default_data_dir
from denoise.data.files import atomic_open, write_text
from denoise.tasks.compose import compose_config
from denoise.tasks.evaluation import evaluate

log = logging.getLogger(__name__)

#: fp16 weights are shipped when no score moves by more than this (dB)
FP16_TOLERANCE_DB = 0.01
#: shipped weights files stay under this size; larger ones keep their card and wait for a hosted URL
MAX_SHIPPED_BYTES = 10 * 2**20
#: the benchmarks a card is scored on, by the network's input
BENCHMARKS = {True: ("set12", "bsd68"), False: ("cbsd68", "kodak24", "mcmaster")}
#: the sigmas a blind model is scored at (those inside its training range)
BLIND_SIGMAS = (15.0, 25.0, 50.0)


class PackError(ValueError):
    """A run that cannot become a card (unfinished, no checkpoint, no config)."""


def claimed_sigmas(sigma: Any) -> list[float]:
    """A fixed sigma is scored at itself; a ``[low, high]`` range at 15, 25 and 50 where they lie in it."""
    if isinstance(sigma, int | float):
        return [float(sigma)]
    low, high = (float(v) for v in sigma)
    return [s for s in BLIND_SIGMAS if low <= s <= high]


def run_config(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The run's composed config and its command-line overrides (``.hydra/``)."""
    config, overrides = run_dir / ".hydra" / "config.yaml", run_dir / ".hydra" / "overrides.yaml"
    if not config.is_file():
        raise PackError(f"{run_dir} has no .hydra/config.yaml: expected the directory of a train.py run")
    cfg = OmegaConf.to_container(OmegaConf.load(config), resolve=False)
    listed = yaml.safe_load(overrides.read_text()) if overrides.is_file() else []
    return dict(cfg), [str(o) for o in listed or []]


def describe(spec: Mapping[str, Any]) -> str:
    """``DnCNN (depth=17, channels=64, in_channels=1)``: the class and its arguments."""
    arguments = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "_target_")
    return f"{str(spec['_target_']).rsplit('.', 1)[-1]} ({arguments})"


def network_file(ckpt: Path, path: Path, dtype: torch.dtype) -> dict[str, Any]:
    """The network of ``ckpt`` alone (its spec and weights in ``dtype``), as a checkpoint that load_network reads."""
    net, spec = load_network(ckpt)
    state = {f"net.{k}": (v.to(dtype) if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    with atomic_open(path) as handle:
        torch.save({"state_dict": state, "hyper_parameters": {"net": spec}}, handle)
    return spec


def score(weights: Path, data_dir: Path, sets: Sequence[str], sigmas: Sequence[float], gray: bool,
          work: Path) -> dict[str, dict[str, float]]:  # fmt: skip
    """``evaluate.py`` of ``weights`` on each set at each sigma: ``{"bsd68_s25": {"psnr": .., "ssim": ..}}``."""
    scores = {}
    for name in sets:
        for sigma in sigmas:
            overrides = [f"ckpt_path={weights}", f"data.test_dirs=[{data_dir / name}]", f"data.grayscale={gray}",
                         f"noise.sigma={sigma:g}", "grid_images=0", "seed=12345"]  # fmt: skip
            results = evaluate(compose_config("evaluate", overrides, work / f"{name}-{sigma:g}-{weights.stem}"))
            scores[f"{name}_s{sigma:g}"] = {"psnr": results["test/psnr"], "ssim": results["test/ssim"]}
    return scores


def pack(run_dir: str | Path, name: str | None = None, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Make ``run_dir`` a card of the zoo (``DENOISE_ZOO``'s index, else the shipped one); returns the card."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise PackError(f"{run_dir} has no results.json: the run did not finish (train it to the end first)")
    results = json.loads(results_path.read_text())
    ckpt = Path(str(results.get("ckpt_path") or run_dir / "checkpoints" / "last.ckpt"))
    if not ckpt.is_file():
        raise PackError(f"{run_dir}: its checkpoint {ckpt} is missing")
    cfg, overrides = run_config(run_dir)
    recipe = next((o for o in overrides if o.startswith("experiment=")), None)
    name = name or (recipe.removeprefix("experiment=") if recipe else run_dir.name)
    if not zoo.NAME.match(name):
        raise PackError(f"--name {name!r}: a card's name has letters, digits, '.', '_', '-' only")
    gray = bool(cfg["data"].get("grayscale", False))
    data_dir = Path(data_dir) if data_dir else default_data_dir()  # paths.data_dir's own default
    sets = [s for s in BENCHMARKS[gray] if (data_dir / s).is_dir()]
    if not sets:
        raise PackError(f"none of {list(BENCHMARKS[gray])} is under {data_dir}: give --data-dir (paths.data_dir)")
    sigmas = claimed_sigmas(cfg["noise"]["sigma"])
    index = zoo.index_path()
    folder = index.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        full, half = work / f"{name}-fp32.ckpt", work / f"{name}-fp16.ckpt"
        spec = network_file(ckpt, full, torch.float32)
        network_file(ckpt, half, torch.float16)
        fp32_scores = score(full, data_dir, sets, sigmas, gray, work)
        fp16_scores = score(half, data_dir, sets, sigmas, gray, work)
        worst = max(abs(fp16_scores[k]["psnr"] - fp32_scores[k]["psnr"]) for k in fp32_scores)
        chosen, scores = (half, fp16_scores) if worst <= FP16_TOLERANCE_DB else (full, fp32_scores)
        size = chosen.stat().st_size
        card = dict(zoo.entries().get(name, {})) if index.is_file() else {}
        card.update({
            "network": describe(spec),
            "recipe": recipe or "", "overrides": [o for o in overrides if o != recipe],
            "gpu": results.get("device"),
            "minutes": round(float(results.get("fit_seconds") or 0) / 60, 2), "steps": results.get("global_step"),
            "scores": scores, "convention": results.get("metrics"), "dtype": "fp16" if chosen is half else "fp32",
            "fp16_worst_psnr_change_db": worst,
        })  # fmt: skip
        if size <= MAX_SHIPPED_BYTES:
            target = folder / f"{name}.ckpt"
            with atomic_open(target) as handle:
                handle.write(chosen.read_bytes())
            card.update({"file": target.name, "sha256": zoo.sha256(target), "bytes": size})
        else:  # the card keeps its recipe and scores; the weights wait for a hosted URL (url + sha256)
            log.warning("%s weights are %.1f MB (> 10 MB): not shipped; host them and add url and sha256", name,
                        size / 2**20)  # fmt: skip
            card.update({"file": None, "sha256": zoo.sha256(chosen), "bytes": size})
    write_card(index, name, card)
    return card


def write_card(index: Path, name: str, card: Mapping[str, Any]) -> None:
    """Add or replace one card of ``index`` (written whole or not at all), the others and the header kept; under
    a lock, so that several runs packed at once (``bench/zoo_train.sh``) each add theirs."""
    index.parent.mkdir(parents=True, exist_ok=True)
    with open(index.with_name(f".{index.name}.lock"), "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        text = index.read_text() if index.is_file() else "models:\n"
        header = "".join(re.findall(r"^#.*\n", text.split("models:", 1)[0], flags=re.MULTILINE))
        data = yaml.safe_load(text) or {}
        models = dict(data.get("models") or {})
        models[name] = dict(card)
        write_text(index, header + yaml.safe_dump({"models": models}, sort_keys=False, width=120))


def import_authors(source: str, path: str | Path, name: str | None = None, pad_mode: str = "authors") -> dict[str, Any]:
    """The authors' released weights of ``source`` (``denoise.zoo.authors.SOURCES``) renamed into this suite's
    network, checked key for key and shape for shape, and written as a card of the zoo (``DENOISE_ZOO``'s index,
    else the shipped one) with the weights beside it; returns the card."""
    from denoise.checkpoint import check_shapes, network_state, safe_load
    from denoise.config.specs import build
    from denoise.zoo.authors import SOURCES, convert

    path = Path(path)
    raw = network_state(safe_load(path, key="FILE"), key=f"FILE={path}")
    spec, state = convert(source, raw, pad_mode)
    check_shapes(spec, state, f"{path} (as {SOURCES[source].network}, from {SOURCES[source].origin})")
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    net = build(spec, what="model.net", kind="network").to(dtype)  # the authors' precision, kept
    net.load_state_dict(state)
    name = name or re.sub(r"[^A-Za-z0-9._-]+", "_", f"{source}_{path.stem}").strip("._-")
    if not zoo.NAME.match(name):
        raise PackError(f"--name {name!r}: a card's name has letters, digits, '.', '_', '-' only")
    index = zoo.index_path()
    target = index.parent / f"{name}.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(target) as handle:
        torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                    "hyper_parameters": {"net": spec}}, handle)  # fmt: skip
    card = dict(zoo.entries().get(name, {})) if index.is_file() else {}
    card.update({
        "network": describe(spec), "recipe": "", "source": f"the authors' weights: {SOURCES[source].origin}",
        "source_file": path.name, "source_sha256": zoo.sha256(path), "pad_mode": spec.get("pad_mode", "reflect"),
        "dtype": str(dtype).removeprefix("torch."), "scores": card.get("scores", {}),
        "file": target.name, "sha256": zoo.sha256(target), "bytes": target.stat().st_size,
    })  # fmt: skip
    write_card(index, name, card)
    return card
