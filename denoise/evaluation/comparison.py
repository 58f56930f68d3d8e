"""Every method on the same noisy images: classical filters and trained networks side by side.

A :class:`Method` turns a noisy ``B x C x H x W`` batch into a denoised one; :func:`compare` runs every
method on every test image once, scores it by :mod:`denoise.evaluation.metrics`, times it, and keeps small copies of
the first few images' outputs for the image grids. The caller writes the files (``report.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from denoise.config.specs import build
from denoise.data.console import Steps
from denoise.data.io import tensor2single
from denoise.evaluation.metrics import Convention, scores
from denoise.evaluation.report import zoom_box
from denoise.inference import Inference, denoise_image

log = logging.getLogger(__name__)

#: the columns of per_image.csv
PER_IMAGE_COLUMNS = ("image", "dataset", "method", "kind", "psnr", "ssim", "psnr_noisy", "ssim_noisy", "seconds")


@dataclass
class Method:
    """One denoiser under comparison: a filter or a network, with the label it has in every table."""

    label: str
    kind: str  # "filter" or "model"
    #: ``run(noisy, known_level)``: ``known_level`` is the data's own noise level map where it has one (synthetic
    #: noise), for networks that take a level; None elsewhere
    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    source: str = ""


def filter_method(name: str, spec: Mapping[str, Any], sigma: float | None) -> Method:
    """A filter config (``conf/filter/<name>.yaml``) as a method; ``sigma`` None lets it estimate the level."""
    spec = dict(spec)
    label = str(spec.pop("label", name))
    function = build({**spec, "_partial_": True}, what=f"filter.{name}", kind="filter")

    def run(noisy: torch.Tensor, known_level: torch.Tensor | None = None) -> torch.Tensor:
        outputs = []
        for image in noisy.detach().float().cpu():
            denoised = function(np.ascontiguousarray(image.permute(1, 2, 0).numpy()), sigma=sigma)
            outputs.append(torch.from_numpy(np.asarray(denoised, dtype=np.float32)).permute(2, 0, 1))
        return torch.stack(outputs).to(noisy.device)

    return Method(label, "filter", run, source=name)


def model_method(label: str, net: nn.Module, source: str, settings: Inference | None = None) -> Method:
    """A network as a method, run through :func:`denoise.inference.denoise_image` under ``settings`` (padding,
    tiles, ensemble, precision, the noise level of networks that take one)."""
    settings = settings or Inference()

    def run(noisy: torch.Tensor, known_level: torch.Tensor | None = None) -> torch.Tensor:
        denoised = denoise_image(net, noisy, settings, known_level=known_level)
        if not bool(torch.isfinite(denoised).all()):  # a NaN weight scores as a black image otherwise
            raise ValueError(
                f"{source} produced non-finite values (NaN or inf): its weights are broken; no scores are written"
            )
        return denoised

    return Method(label, "model", run, source=source)


def unique_labels(names: Sequence[str], sources: Sequence[str]) -> list[str]:
    """``REDNet`` stays ``REDNet`` unless two checkpoints share it; then the run and file tell them apart."""
    labels = []
    for name, source in zip(names, sources, strict=True):
        if names.count(name) == 1:
            labels.append(name)
            continue
        if source.startswith("zoo:"):  # a zoo card is named by its card
            labels.append(f"{name} ({source})")
            continue
        path = Path(source)
        parent = path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
        labels.append(f"{name} ({parent}/{path.stem})")
    for i, label in enumerate(labels):  # still equal (the same file twice): number them
        if labels.count(label) > 1:
            labels[i] = f"{label} #{labels[:i].count(label) + 1}"
    return labels


@dataclass
class GridCase:
    """What one image grid shows: thumbnails and full-resolution crops of the input, every output and the clean
    image, with each output's PSNR/SSIM."""

    image: str
    dataset: str
    box: tuple[int, int, int, float]
    #: label ("noisy", a method's label, "clean") -> (caption, thumbnail, crop)
    panels: dict[str, tuple[str, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def ordered(self, labels: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """The panels as noisy | the methods in ``labels`` order | clean."""
        return [self.panels[label] for label in ("noisy", *labels, "clean") if label in self.panels]


@dataclass
class Comparison:
    per_image: list[dict[str, Any]]
    grids: list[GridCase]
    seconds: dict[str, float]
    megapixels: float


def _thumbnail(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small.reshape(size[1], size[0], image.shape[2])


class _GridBuilder:
    """Small copies (a thumbnail and the zoomed crop) so grids of full-size photos cost little memory."""

    def __init__(self, image: str, dataset: str, clean: torch.Tensor, thumb_size: int = 320) -> None:
        array = tensor2single(clean.clamp(0, 1))
        height, width = array.shape[:2]
        self.scale = min(1.0, thumb_size / max(height, width))
        top, left, size = zoom_box(array, max(32, min(height, width) // 4))
        self.case = GridCase(image, dataset, (top, left, size, self.scale))
        self.clean = array

    def add(self, label: str, caption: str, image: torch.Tensor | np.ndarray) -> None:
        array = image if isinstance(image, np.ndarray) else tensor2single(image.clamp(0, 1))
        top, left, size, _ = self.case.box
        crop = np.ascontiguousarray(array[top : top + size, left : left + size])
        self.case.panels[label] = (caption, _thumbnail(array, self.scale), crop)

    def finish(self) -> GridCase:
        self.add("clean", "clean", self.clean)
        return self.case


def _caption(label: str, psnr: float, ssim: float) -> str:
    return f"{label}\n{psnr:.2f} dB / {ssim:.4f}"


@torch.no_grad()
def compare(
    methods: Sequence[Method],
    batches: Iterable[Mapping[str, Any]],
    total: int,
    device: torch.device,
    grid_images: int = 3,
    convention: Convention | None = None,
) -> Comparison:
    """Run every method on every test image (batches of one), with a progress bar over images x methods, and
    score it by ``convention`` (RGB, float, SSIM as scikit-image by default)."""
    per_image: list[dict[str, Any]] = []
    grids: list[GridCase] = []
    seconds = dict.fromkeys((m.label for m in methods), 0.0)
    megapixels = 0.0
    with Steps("evaluate", total * len(methods), "runs", emit=log.info) as progress:  # a bar, or plain lines
        for index, batch in enumerate(batches):
            noisy, clean = batch["noisy"].to(device), batch["clean"].to(device)
            if noisy.shape[0] != 1:
                raise ValueError(f"compare() scores one image at a time; got a batch of {noisy.shape[0]}")
            name = str(batch["name"][0])
            dataset = str(batch["dataset"][0]) if "dataset" in batch else ""
            megapixels += noisy.shape[-1] * noisy.shape[-2] / 1e6
            grid = _GridBuilder(name, dataset, clean[0]) if index < grid_images else None
            # the input's scores once per image; every method's row repeats them
            measured = scores(noisy, clean, convention)
            noisy_scores = {"psnr_noisy": float(measured["psnr"][0]), "ssim_noisy": float(measured["ssim"][0])}
            if grid is not None:
                grid.add("noisy", _caption("noisy", noisy_scores["psnr_noisy"], noisy_scores["ssim_noisy"]), noisy[0])
            for method in methods:
                start = time.perf_counter()
                known = batch.get("noise_level")
                denoised = method.run(noisy, known.to(device) if known is not None else None)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - start
                seconds[method.label] += elapsed
                if denoised.shape != noisy.shape:
                    raise ValueError(
                        f"{method.label} returned shape {tuple(denoised.shape)} for an input of {tuple(noisy.shape)}"
                    )
                output = denoised.float().clamp(0, 1)
                row = {"image": name, "dataset": dataset, "method": method.label, "kind": method.kind}
                measured = scores(output, clean, convention)
                row.update({"psnr": float(measured["psnr"][0]), "ssim": float(measured["ssim"][0])})
                row.update(noisy_scores)
                row["seconds"] = elapsed
                per_image.append(row)
                if grid is not None:
                    grid.add(method.label, _caption(method.label, row["psnr"], row["ssim"]), denoised[0])
                progress.advance(1, f"{method.label} on {name}")
            if grid is not None:
                grids.append(grid.finish())
    return Comparison(per_image, grids, seconds, megapixels)


def mean_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per-image scores averaged over images (the published convention)."""
    keys = ("psnr", "ssim", "psnr_noisy", "ssim_noisy")
    return {k: float(np.mean([float(r[k]) for r in rows])) for k in keys}


def summary_rows(comparison: Comparison, methods: Sequence[Method]) -> list[dict[str, Any]]:
    """results.csv / results.md: the noisy input first, then every method by PSNR, best first."""
    rows: list[dict[str, Any]] = []
    noisy: dict[str, float] | None = None
    for method in methods:
        mine = [r for r in comparison.per_image if r["method"] == method.label]
        scores = mean_scores(mine)
        noisy = noisy or scores
        rows.append(
            {
                "method": method.label,
                "kind": method.kind,
                "psnr": scores["psnr"],
                "ssim": scores["ssim"],
                "psnr_gain": scores["psnr"] - scores["psnr_noisy"],
                "ssim_gain": scores["ssim"] - scores["ssim_noisy"],
                "seconds_per_megapixel": comparison.seconds[method.label] / max(comparison.megapixels, 1e-12),
                "images": len(mine),
            }
        )
    rows.sort(key=lambda r: -r["psnr"])
    assert noisy is not None
    first = {"method": "noisy input", "kind": "input", "psnr": noisy["psnr_noisy"], "ssim": noisy["ssim_noisy"]}
    first.update({"psnr_gain": 0.0, "ssim_gain": 0.0, "images": rows[0]["images"]})
    return [first, *rows]
