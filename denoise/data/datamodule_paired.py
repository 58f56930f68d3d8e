"""The DataModule of real noisy/clean pairs, from one or more dataset layouts (SIDD, RENOIR, NIND, a folder)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from denoise.data.cache import PatchStore, StorePatches
from denoise.data.datamodule_base import DenoiseDataModule, size_or_problem
from denoise.data.layout import Benchmark, Layout
from denoise.data.pairs import (
    BlockImages,
    ImagePair,
    PairImages,
    PairPatches,
    PairSample,
    load_pair,
    scene_mates,
    unique_pairs,
)


class PairedDataModule(DenoiseDataModule):
    """Real noisy/clean pairs from one or more dataset layouts (``datasets``: name -> layout object).

    Each layout (SIDD, RENOIR, NIND, a folder of pairs) says which pairs make its train/val/test splits and
    may offer fixed evaluation blocks (SIDD's validation .mat). Training draws a dataset by its weight in
    ``weights`` (default: equal), then one of its pairs; every batch carries each sample's ``dataset``.
    """

    cpu_workers = 2  # decoding photos is the slow part of a real-pair batch

    def __init__(
        self,
        datasets: Mapping[str, Any],
        weights: Mapping[str, float] | None = None,
        patch_size: int = 256,
        samples_per_epoch: int | None = 4000,
        augment: bool = True,
        store: Mapping[str, Any] | None = None,
        resize: int | None = None,
        test_split: str = "test",
        test_is_val: bool | None = None,
        **options: Any,
    ) -> None:
        """``store`` (``enabled``, ``size``, ``stride``, ``cache_dir``) turns on the crop-once patch store.
        ``resize``: every photo shrunk whole to ``resize x resize`` (the seed's protocol; no patch store), and
        ``samples_per_epoch=None`` makes an epoch one pass over the training pairs. ``test_split``: ``test`` (each
        layout's own test pairs) or ``val`` (test on the validation pairs: a two-way split, as the seed scored its
        20% held-out set; results.json says so, :meth:`test_is_validation`). ``test_is_val=true`` is the earlier
        spelling of ``test_split=val``.

        Keys named ``root``, ``*_root`` or ``*_dir`` are the user-facing paths (``data.root=...``) that the
        layouts' configs interpolate; they are accepted here so the run's config records them."""
        self.paths = {k: v for k, v in options.items() if k == "root" or k.endswith(("_root", "_dir"))}
        super().__init__(**{k: v for k, v in options.items() if k not in self.paths})
        if not datasets:
            raise ValueError("data.datasets is empty; expected at least one dataset layout")
        self.layouts: dict[str, Layout] = dict(datasets)
        for name, layout in self.layouts.items():
            if not isinstance(layout, Layout):
                raise TypeError(
                    f"data.datasets.{name} is a {type(layout).__name__}, not a dataset layout: expected an object with "
                    "a name, splits() and blocks(split) (denoise/data/layout.py)"
                )
        unknown = sorted(set(weights or {}) - set(self.layouts))
        if unknown:
            raise ValueError(f"data.weights names {unknown}, which are not in data.datasets {sorted(self.layouts)}")
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in self.layouts}
        self.patch_size, self.samples_per_epoch, self.augment = patch_size, samples_per_epoch, augment
        self.store = dict(store or {})
        if test_split not in ("test", "val"):
            raise ValueError(f"data.test_split={test_split!r}: expected test (each dataset's own) or val")
        self.resize, self.test_is_val = resize, test_split == "val" or bool(test_is_val)
        if resize is not None and self.store.get("enabled", False):
            raise ValueError(f"data.resize={resize} works on whole photos: set data.store.enabled=false")
        if resize is not None and patch_size > resize:
            raise ValueError(f"data.patch_size={patch_size} is larger than the resized photos (data.resize={resize})")
        if samples_per_epoch is None and self.store.get("enabled", False):
            raise ValueError("data.samples_per_epoch=null (one pass over the pairs) needs data.store.enabled=false")
        self.prepare_data_per_node = True

    def patch_stores(self, progress: bool = True) -> dict[str, PatchStore]:
        """Each dataset's training pairs in its patch store, built on first use."""
        settings = {"size": int(self.store.get("size", 512)), "stride": int(self.store.get("stride", 384))}
        cache_dir = self.store.get("cache_dir") or ".cache/patches"
        return {
            name: PatchStore.build(pairs, cache_dir, name, channels=self.channels, progress=progress,
                                   scene_mates=scene_mates(pairs) if self.second_noisy else None, **settings)
            for name, pairs in self.split_pairs("train").items()
            if pairs
        }  # fmt: skip

    def prepare_data(self) -> None:
        """Build the patch stores once (Lightning calls this on one process per node, before ``setup``)."""
        if self.store.get("enabled", False):
            self.patch_stores()

    @property
    def dataset_names(self) -> list[str]:
        """The datasets whose val/test metrics are also reported one by one (when there are several)."""
        return list(self.layouts) if len(self.layouts) > 1 else []

    def test_is_validation(self) -> bool:
        """``test_split=val``, or a layout whose test is its validation (SIDD's official blocks; a folder of pairs
        scored whole, or too few to hold out both)."""

        def shared(layout: Layout) -> bool:
            if hasattr(layout, "shares_test_with_validation"):
                return bool(layout.shares_test_with_validation())
            splits = layout.splits()
            return bool(splits["test"]) and splits["test"] == splits["val"]

        return self.test_is_val or any(shared(layout) for layout in self.layouts.values())

    def training_files(self) -> list[Path]:
        pairs = [pair for members in self.split_pairs("train").values() for pair in members]
        mates = [path for paths in scene_mates(pairs).values() for path in paths] if self.second_noisy else []
        return [path for pair in pairs for path in (pair.noisy, *pair.clean)] + mates

    def input_problems(self, split: str) -> list[str]:
        problems: list[str] = []
        source = "val" if split == "test" and self.test_is_val else split
        cropping = split == "train" and self.resize is None and not self.store.get("enabled", False)
        for name, layout in self.layouts.items():
            try:
                pairs = layout.splits()[source]
            except (FileNotFoundError, NotADirectoryError, ValueError) as err:
                problems.append(f"{name}: {err}")
                continue
            for pair in pairs:
                sizes = [size_or_problem(path, problems) for path in (pair.noisy, *pair.clean)]
                if None in sizes:
                    continue
                paths = (pair.noisy, *pair.clean)
                files = ", ".join(f"{path} is {h}x{w}" for path, (h, w) in zip(paths, sizes, strict=True))
                if len(set(sizes)) > 1 and not pair.crop_to_common:
                    problems.append(f"pair {pair.name}: the images differ in size ({files})")
                if cropping and min(min(size) for size in sizes) < self.patch_size:
                    problems.append(f"pair {pair.name} ({files}) is smaller than data.patch_size={self.patch_size}")
        return problems

    can_serve = frozenset({"noisy", "clean", "noisy2"})

    def serve(self, needs: frozenset[str] | set[str], objective: str = "the objective") -> None:
        """A second noisy view comes from the other shots of each training pair's scene: every dataset must have
        them (the patch store then keeps one of them beside each sub-image)."""
        super().serve(needs, objective)
        if not self.second_noisy:
            return
        for name, pairs in self.split_pairs("train").items():
            lonely = [pair for pair, mates in zip(pairs, scene_mates(pairs).values(), strict=True) if not mates]
            if lonely:
                raise ValueError(
                    f"model.objective={objective} needs two independent noisy shots of every scene, but "
                    f"{len(lonely)} of data.datasets.{name}'s {len(pairs)} training scenes have one (e.g. "
                    f"{lonely[0].noisy}); SIDD Medium (_010/_011), NIND and RENOIR have several, or use "
                    "objective=neighbor2neighbor or noise2void"
                )

    def pair_count(self) -> int:
        return sum(len(unique_pairs(layout.splits())) for layout in self.layouts.values())

    def iter_pairs(self) -> Iterator[PairSample]:
        """Every pair of every layout once, as its layout names it, with its metadata."""
        for name, layout in self.layouts.items():
            for pair in unique_pairs(layout.splits()):
                noisy, clean = load_pair(pair, self.channels, self.resize)
                yield PairSample(pair.name, name, noisy, clean, dict(pair.meta))

    def benchmarks(self) -> dict[str, Benchmark]:
        return {name: layout for name, layout in self.layouts.items() if isinstance(layout, Benchmark)}

    def split_pairs(self, split: str) -> dict[str, list[ImagePair]]:
        return {name: layout.splits()[split] for name, layout in self.layouts.items()}

    def build_split(self, split: str) -> Dataset:
        if split == "test" and self.test_is_val:
            split = "val"
        if split == "train" and self.store.get("enabled", False):
            stores = self.patch_stores(progress=False)
            return StorePatches(list(stores.values()), [self.weights[name] for name in stores], self.patch_size,
                                self.samples_per_epoch, self.augment, seed=self.run_seed,
                                second_noisy=self.second_noisy)  # fmt: skip
        if split == "train":
            pairs, weights = [], []
            for name, members in self.split_pairs("train").items():
                pairs += members
                weights += [self.weights[name] / len(members)] * len(members)
            if not pairs:
                raise ValueError(f"no training pairs in {sorted(self.layouts)}: every pair was held out")
            mates = scene_mates(pairs) if self.second_noisy else None
            return PairPatches(pairs, self.channels, self.patch_size, self.samples_per_epoch, self.augment, weights,
                               resize=self.resize, seed=self.run_seed, scene_mates=mates)  # fmt: skip
        parts: list[Dataset] = []
        for name, layout in self.layouts.items():
            blocks = None if self.resize else layout.blocks(split)
            if blocks is not None:
                noisy, clean, names = blocks
                parts.append(BlockImages(noisy, clean, names, name))
            elif layout.splits()[split]:
                parts.append(PairImages(layout.splits()[split], self.channels, self.resize))
        if not parts:
            raise ValueError(
                f"no {split} data in {sorted(self.layouts)}: hold out some of it (data.datasets.<name>.val_fraction) "
                "or provide the dataset's official evaluation files"
            )
        return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
