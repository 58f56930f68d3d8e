"""The DataModule of a folder of noisy images without clean twins (``data=noisy_folder``), for the
self-supervised objectives (neighbor2neighbor, noise2void)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from denoise.data.datamodule_base import DenoiseDataModule, size_or_problem
from denoise.data.io import ImageReadError
from denoise.data.noise_diagnosis import CLEAN_LEVEL, Diagnosis, diagnose
from denoise.data.noisy_folder import NoisyCrops, NoisyOnly, folder_files, held_out, load_noisy
from denoise.data.pairs import PairSample

log = logging.getLogger(__name__)
#: objectives that assume noise independent between pixels
PIXEL_INDEPENDENT = ("neighbor2neighbor", "noise2void")


class NoisyFolderDataModule(DenoiseDataModule):
    """Noisy images only: training crops of them, validation and test on whole held-out images."""

    can_serve = frozenset({"noisy"})
    has_clean = False

    def __init__(
        self,
        noisy_dir: str,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        patch_size: int = 64,
        samples_per_epoch: int = 800,
        augment: bool = True,
        min_noise_sigma: float = CLEAN_LEVEL,
        **base: Any,
    ) -> None:
        """``min_noise_sigma`` (0-255 scale): below this median noise level (the fit level of
        :mod:`denoise.data.noise_diagnosis`, which keeps correlated camera noise) the folder looks clean, and is
        refused rather than taught as noise-free."""
        super().__init__(**base)
        self.noisy_dir, self.val_fraction, self.test_fraction = noisy_dir, val_fraction, test_fraction
        self.patch_size, self.samples_per_epoch, self.augment = patch_size, samples_per_epoch, augment
        self.min_noise_sigma = min_noise_sigma
        self._checked_noise = False
        self.objective = "the objective"
        #: the noise diagnosis of the training images, once measured
        self.diagnosis: Diagnosis | None = None

    def serve(self, needs: frozenset[str] | set[str], objective: str = "the objective") -> None:
        super().serve(needs, objective)
        self.objective = objective

    def files(self) -> dict[str, list]:
        return held_out(folder_files(self.noisy_dir), self.val_fraction, self.test_fraction)

    def training_files(self) -> list[Path]:
        return [Path(path) for path in self.files()["train"]]

    def cannot_serve(self, missing: list[str], objective: str) -> str:
        if "noisy2" in missing:
            return (
                f"model.objective={objective} needs two independent noisy shots of every scene; data.noisy_dir="
                f"{self.noisy_dir} holds one image per scene. Use objective=neighbor2neighbor or noise2void (one "
                "noisy image each), or a dataset with several shots (data=sidd, data=nind, data=renoir)"
            )
        return (
            f"model.objective={objective} needs clean target images; data.noisy_dir={self.noisy_dir} holds only noisy "
            "ones. Use objective=neighbor2neighbor or objective=noise2void"
        )

    def input_problems(self, split: str) -> list[str]:
        try:
            splits = self.files()
        except (FileNotFoundError, NotADirectoryError) as err:
            return [str(err)]
        problems: list[str] = []
        if not splits[split]:
            total = sum(len(files) for files in splits.values())
            problems.append(
                f"data.noisy_dir={self.noisy_dir} holds {total} image(s), which leaves none for {split} (the "
                f"held-out shares are data.val_fraction={self.val_fraction}, data.test_fraction={self.test_fraction}"
                f"); give at least {self.fewest_images()} images"
            )
        images = []
        for path in splits[split]:
            size = size_or_problem(path, problems)
            if size is not None and split == "train" and min(size) < self.patch_size:
                problems.append(f"{path} is {size[0]}x{size[1]}, smaller than data.patch_size={self.patch_size}")
            elif size is not None and split == "train":
                try:
                    images.append(load_noisy([path], self.channels)[0])
                except ImageReadError as err:
                    problems.append(str(err))
        if images:
            try:
                self.check_noise(images)
                self._checked_noise = True
            except ImageReadError as err:
                problems.append(str(err))
        return problems

    def fewest_images(self) -> int:
        """The fewest images that leave at least one for each of train, val and test."""
        for count in range(3, 1001):
            if all(held_out([Path(f"{i:04d}") for i in range(count)], self.val_fraction, self.test_fraction).values()):
                return count
        return 1001

    def _load(self, split: str) -> tuple[list, list[str]]:
        files = self.files()[split]
        if not files:
            raise ValueError(
                f"data.noisy_dir={self.noisy_dir}: no {split} images (data.val_fraction / data.test_fraction hold "
                "some out)"
            )
        return load_noisy(files, self.channels), [f.name for f in files]

    def check_noise(self, images: list) -> None:
        """Diagnose the noise (logged once), refuse a folder of clean images (the objectives would learn to leave
        them as they are) and warn when the objective assumes independent noise that is correlated here."""
        diagnosis = self.diagnosis = diagnose(images, clean_level=self.min_noise_sigma)
        if diagnosis.looks_clean:
            raise ImageReadError(
                f"data.noisy_dir={self.noisy_dir}: these images look clean (median noise level "
                f"{diagnosis.fit_level:.2f}/255 in their flattest regions, below data.min_noise_sigma="
                f"{self.min_noise_sigma}; clean photo sets measure 1.0-1.9, real camera noise at 37 dB 2.7); the "
                "self-supervised objectives remove noise that is there. Give noisy images, or lower "
                "data.min_noise_sigma if the noise is that faint"
            )
        recommended = ", ".join(f"objective={name}" for name in diagnosis.recommended_objectives)
        log.info(
            "Noise of data.noisy_dir (%d training images): %s Recommended: %s",
            diagnosis.images,
            diagnosis.verdict,
            recommended,
        )
        if diagnosis.correlated and self.objective in PIXEL_INDEPENDENT:
            log.warning(
                "objective=%s assumes noise independent between pixels, and this folder's noise is spatially "
                "correlated (lag-1 correlation %.2f, threshold %.2f): expect a small gain (on real SIDD noise it "
                "gains 1.7 dB where supervised training gains 12.4). Use objective=apbsn model=bsn",
                self.objective,
                diagnosis.correlation,
                diagnosis.thresholds["correlated"],
            )

    def build_split(self, split: str) -> Dataset:
        images, names = self._load(split)
        if split == "train":
            if not self._checked_noise:
                self.check_noise(images)
                self._checked_noise = True
            return NoisyCrops(images, names, self.patch_size, self.samples_per_epoch, self.augment, self.run_seed)
        return NoisyOnly(images, names)

    def pair_count(self) -> int:
        return 0

    def noisy_files(self) -> list[Path]:
        """Every image of the folder (all splits), for the EDA's noise diagnosis."""
        return sorted(folder_files(self.noisy_dir))

    def read_noisy(self, path: Path):
        """One image as stored (8 or 16 bit), in the configured channels."""
        return load_noisy([path], self.channels)[0]

    def iter_pairs(self) -> Iterator[PairSample]:
        raise ValueError("the EDA measures noise against clean images; data=noisy_folder has none")
