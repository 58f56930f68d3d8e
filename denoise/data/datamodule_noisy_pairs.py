"""The DataModule of a user's own noisy/noisy pairs (``data=noisy_pairs``): two shots of every scene for
``objective=noise2noise``, clean images only to score validation and test where there are any."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from denoise.data.datamodule_base import DenoiseDataModule, size_or_problem
from denoise.data.io import ImageReadError, read_image
from denoise.data.noisy_folder import NoisyOnly, held_out, load_noisy
from denoise.data.noisy_pairs import MIN_ALIGNMENT, FirstShots, ShotCrops, ShotPair, match_shots, misalignment
from denoise.data.pairs import PairSample


class NoisyPairsDataModule(DenoiseDataModule):
    """Two noisy shots of every scene matched by name; every 10th scene held out for validation and for test."""

    def __init__(
        self,
        noisy_dir: str,
        second_dir: str,
        clean_dir: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        patch_size: int = 64,
        samples_per_epoch: int = 800,
        augment: bool = True,
        min_alignment: float = MIN_ALIGNMENT,
        **base: Any,
    ) -> None:
        """``min_alignment``: below this correlation of the two shots' 8x8 block means a pair is refused as
        misaligned (a tripod moved, another scene)."""
        super().__init__(**base)
        self.noisy_dir, self.second_dir, self.clean_dir = noisy_dir, second_dir, clean_dir or None
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.patch_size, self.samples_per_epoch, self.augment = patch_size, samples_per_epoch, augment
        self.min_alignment = min_alignment
        self.has_clean = self.clean_dir is not None
        self.can_serve = frozenset({"noisy", "noisy2", "clean"} if self.has_clean else {"noisy", "noisy2"})

    def splits(self) -> dict[str, list[ShotPair]]:
        pairs = {pair.first: pair for pair in match_shots(self.noisy_dir, self.second_dir, self.clean_dir)}
        chosen = held_out(list(pairs), self.val_fraction, self.test_fraction)
        return {split: [pairs[path] for path in paths] for split, paths in chosen.items()}

    def training_files(self) -> list[Path]:
        return [path for pair in self.splits()["train"] for path in (pair.first, pair.second, pair.clean) if path]

    def cannot_serve(self, missing: list[str], objective: str) -> str:
        return (
            f"model.objective={objective} needs clean target images; data=noisy_pairs has two noisy shots of every "
            "scene (data.clean_dir, when given, only scores validation and test). Use objective=noise2noise"
        )

    def input_problems(self, split: str) -> list[str]:
        """Every problem of the split at once: missing partners, unreadable files, sizes that differ, crops too
        small, shots that do not show the same scene in the same place."""
        try:
            pairs = self.splits()[split]
        except (FileNotFoundError, NotADirectoryError, ValueError) as err:
            return [str(err)]
        problems: list[str] = []
        if not pairs:
            problems.append(
                f"data.noisy_dir={self.noisy_dir} holds too few scenes to leave one for {split} (data.val_fraction="
                f"{self.val_fraction}, data.test_fraction={self.test_fraction})"
            )
        for pair in pairs:
            paths = [path for path in (pair.first, pair.second, pair.clean) if path is not None]
            sizes = [size_or_problem(path, problems) for path in paths]
            if None in sizes:
                continue
            if len(set(sizes)) > 1:
                described = ", ".join(f"{path} is {h}x{w}" for path, (h, w) in zip(paths, sizes, strict=True))
                problems.append(f"scene {pair.name}: the images differ in size ({described})")
                continue
            if split == "train" and min(sizes[0]) < self.patch_size:
                problems.append(f"scene {pair.name} is {sizes[0][0]}x{sizes[0][1]}, smaller than data.patch_size")
                continue
            try:
                alignment = misalignment(read_image(pair.first, self.channels), read_image(pair.second, self.channels))
            except ImageReadError as err:
                problems.append(str(err))
                continue
            if alignment < self.min_alignment:
                problems.append(
                    f"scene {pair.name}: {pair.first} and {pair.second} do not show the same scene in the same place "
                    f"(correlation of their 8x8 block means {alignment:.3f}, below data.min_alignment="
                    f"{self.min_alignment}); Noise2Noise needs the two shots aligned to the pixel"
                )
        return problems

    def build_split(self, split: str) -> Dataset:
        pairs = self.splits()[split]
        if not pairs:
            raise ValueError(f"data.noisy_dir={self.noisy_dir}: no {split} scenes")
        if split != "train":
            if self.has_clean:
                return FirstShots(pairs, self.channels)
            images = [read_image(pair.first, self.channels) for pair in pairs]
            return NoisyOnly(images, [pair.first.name for pair in pairs])
        scenes = []
        for pair in pairs:
            shots = [read_image(path, self.channels) for path in (pair.first, pair.second)]
            scenes.append((*shots, read_image(pair.clean, self.channels)) if pair.clean else tuple(shots))
        names = [pair.name for pair in pairs]
        return ShotCrops(scenes, names, self.patch_size, self.samples_per_epoch, self.augment, self.run_seed)

    def noisy_files(self) -> list[Path]:
        """Every scene's two shots, for the EDA's noise diagnosis."""
        return [path for pairs in self.splits().values() for pair in pairs for path in (pair.first, pair.second)]

    def read_noisy(self, path: Path):
        """One shot as stored (8 or 16 bit), in the configured channels."""
        return load_noisy([path], self.channels)[0]

    def pair_count(self) -> int:
        return sum(len(pairs) for pairs in self.splits().values()) if self.has_clean else 0

    def iter_pairs(self) -> Iterator[PairSample]:
        if not self.has_clean:
            raise ValueError("the EDA measures noise against clean images; give data.clean_dir")
        for pairs in self.splits().values():
            for pair in pairs:
                noisy, clean = read_image(pair.first, self.channels), read_image(pair.clean, self.channels)
                yield PairSample(pair.name, "noisy_pairs", noisy, clean, {})
