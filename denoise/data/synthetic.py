"""Clean images with synthetic noise: the photos that ship inside scikit-image, or any folders of images.

The embedded default needs no download: scikit-image installs these photos with the package. The split is
fixed by name so results are comparable across runs and machines. Validation and test noise comes from a
per-image seed (the base seed and the image's name), so a test result is the same on every run.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from denoise.data.io import array2tensor, list_images, read_raw, to_channels
from denoise.data.sampling import sample_generator
from denoise.data.transforms import random_patch

#: scikit-image's bundled photos (file names in ``skimage/data``), split once by name
EMBEDDED_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "rocket.jpg",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "retina.jpg",
        "camera.png",
        "coins.png",
        "moon.png",
        "brick.png",
        "grass.png",
        "gravel.png",
    ),
    "val": ("coffee.png",),
    "test": ("astronaut.png", "chelsea.png"),
}


def embedded_files(split: str) -> list[Path]:
    """Paths of the embedded photos of ``split`` (train, val or test) inside the installed scikit-image."""
    import skimage.data

    root = Path(skimage.data.__file__).parent
    files = [root / name for name in EMBEDDED_SPLITS[split]]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"scikit-image's bundled photos are missing: {missing}; reinstall scikit-image>=0.22 "
            "or name your own folders with data.train_dirs / data.val_dirs / data.test_dirs"
        )
    return files


def resolve_files(dirs: Sequence[str] | str | None, split: str, problems: list[str] | None = None) -> list[Path]:
    """Image files of one split: the user's folders (``data.<split>_dirs``) or the embedded photos. With
    ``problems``, a missing or empty folder is noted there and the others are still listed (the input check);
    without, it is an error."""
    folders = None if dirs is None else ([dirs] if isinstance(dirs, str | Path) else list(dirs))
    files: list[Path] = []
    for i, folder in enumerate(folders or [None]):
        try:
            files.extend(
                embedded_files(split) if folder is None else list_images(folder, key=f"data.{split}_dirs[{i}]")
            )
        except (FileNotFoundError, NotADirectoryError) as err:
            if problems is None:
                raise
            problems.append(str(err))
    return files


def load_images(files: Sequence[Path], channels: int) -> list[np.ndarray]:
    """Decode every file once (uint8/uint16 kept, so memory stays at the files' own depth)."""
    return [to_channels(read_raw(path), channels, path) for path in files]


def image_seed(base_seed: int, name: str) -> int:
    """A stable per-image seed: independent of list order, identical on every run and machine."""
    return (base_seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


class RandomPatches(Dataset):
    """Training samples: a random image, a random aligned crop, a random flip/rot90, fresh noise.

    One epoch is ``samples_per_epoch`` crops, so epoch length does not depend on how many photos there are.
    Sample ``index`` (a global sample number, :mod:`denoise.data.sampling`) is drawn from its own generator
    seeded by ``seed`` and the index, so it is the same in any process and after a resume. With ``fixed``
    sample ``i`` of every epoch is the same crop with the same noise (for overfitting one batch).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str],
        noise,
        patch_size: int,
        samples_per_epoch: int,
        augment: bool = True,
        seed: int = 0,
        fixed: bool = False,
        second_noisy: bool = False,
        noise_levels: bool = False,
    ) -> None:
        """``second_noisy``: each sample also holds ``noisy2``, an independent second noise draw of the same crop
        (the target of Noise2Noise); ``noise_levels``: ``noise_level``, the ``1 x p x p`` map of the noise's
        standard deviation (for FFDNet and DRUNet)."""
        for image, name in zip(images, names, strict=True):
            if min(image.shape[:2]) < patch_size:
                raise ValueError(
                    f"training image {name} is {image.shape[0]}x{image.shape[1]}, smaller than "
                    f"data.patch_size={patch_size}"
                )
        self.images, self.names = list(images), list(names)
        self.noise, self.patch_size = noise, patch_size
        self.samples_per_epoch, self.augment = samples_per_epoch, augment
        self.seed, self.fixed, self.second_noisy, self.noise_levels = seed, fixed, second_noisy, noise_levels

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        generator = sample_generator(self.seed, index % self.samples_per_epoch if self.fixed else index)
        pick, clean = random_patch(self.images, self.patch_size, self.augment, generator)
        noisy, level = self.noise.draw(clean, generator)
        sample = {"noisy": noisy, "clean": clean, "name": self.names[pick]}
        if self.second_noisy:
            sample["noisy2"] = self.noise(clean, generator)
        if self.noise_levels:
            sample["noise_level"] = level
        return sample


class NoisyImages(Dataset):
    """Whole images for validation and test, each with noise drawn from its own fixed seed."""

    def __init__(
        self, images: Sequence[np.ndarray], names: Sequence[str], noise, seed: int = 0, noise_levels: bool = False
    ) -> None:
        self.images, self.names, self.noise, self.seed = list(images), list(names), noise, seed
        self.noise_levels = noise_levels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        clean = array2tensor(self.images[index])
        generator = torch.Generator().manual_seed(image_seed(self.seed, self.names[index]))
        noisy, level = self.noise.draw(clean, generator)
        sample = {"noisy": noisy, "clean": clean, "name": self.names[index]}
        if self.noise_levels:
            sample["noise_level"] = level
        return sample


class DevicePatches:
    """Training batches drawn where the network runs (``data.on_device``): the clean images live in the
    accelerator's memory at their own bit depth, and each batch's crops, flips/rotations and noise are made
    there in a few kernels, for small networks whose steps outrun any CPU loader.

    The statistics are those of :class:`RandomPatches`: an image uniformly, a crop position uniformly inside
    it, one of the 8 flips/rotations uniformly (a random transpose, horizontal and vertical flip, folded into
    the crop's indices, so the transforms are exact), and the noise model's own distribution per image.
    """

    def __init__(self, images: Sequence[np.ndarray], noise, patch_size: int, augment: bool = True) -> None:
        heights = [image.shape[0] for image in images]
        widths = [image.shape[1] for image in images]
        if min(min(heights), min(widths)) < patch_size:
            raise ValueError(f"a training image is smaller than data.patch_size={patch_size}")
        dtypes = {image.dtype for image in images}
        if len(dtypes) != 1:
            raise ValueError(f"data.on_device needs images of one bit depth, got {sorted(map(str, dtypes))}")
        dtype = dtypes.pop()
        self.scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(dtype, 1.0)
        # one flat buffer of every image in C x H x W order (uint8 stays uint8; 16-bit and float exactly as int32
        # or float32), with each image's start, height and width
        flat = [np.ascontiguousarray(image.transpose(2, 0, 1)).reshape(-1) for image in images]
        storage = np.uint8 if dtype == np.uint8 else np.int32 if dtype == np.uint16 else np.float32
        self._flat_cpu = torch.from_numpy(np.concatenate(flat).astype(storage, copy=False))
        self._starts_cpu = torch.tensor(np.cumsum([0] + [f.size for f in flat[:-1]]), dtype=torch.int64)
        self._heights_cpu, self._widths_cpu = torch.tensor(heights), torch.tensor(widths)
        self.channels = images[0].shape[2]
        self.noise, self.patch_size, self.augment = noise, patch_size, augment
        self._device: torch.device | None = None

    def _to(self, device: torch.device) -> None:
        if self._device != device:
            self.flat = self._flat_cpu.to(device)
            self.starts, self.heights, self.widths = (
                t.to(device) for t in (self._starts_cpu, self._heights_cpu, self._widths_cpu)
            )
            self._device = device

    def clean(self, batch_size: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` clean ``C x p x p`` crops in [0, 1], float32, on ``device``."""
        self._to(device)
        size, count = self.patch_size, len(self.heights)
        pick = torch.randint(0, count, (batch_size,), generator=generator, device=device)
        height, width = self.heights[pick], self.widths[pick]
        top = _uniform_below(height - size + 1, generator)
        left = _uniform_below(width - size + 1, generator)
        out = torch.arange(size, device=device)
        rows, cols = (
            out.view(1, size, 1).expand(batch_size, size, size),
            out.view(1, 1, size).expand(batch_size, size, size),
        )
        if self.augment:
            transpose, flip_rows, flip_cols = (
                torch.rand(3, batch_size, 1, 1, generator=generator, device=device) < 0.5
            ).unbind(0)
            rows, cols = torch.where(transpose, cols, rows), torch.where(transpose, rows, cols)
            rows = torch.where(flip_rows, size - 1 - rows, rows)
            cols = torch.where(flip_cols, size - 1 - cols, cols)
        channel = torch.arange(self.channels, device=device).view(1, -1, 1, 1)
        row_index = (top.view(-1, 1, 1) + rows).unsqueeze(1)
        col_index = (left.view(-1, 1, 1) + cols).unsqueeze(1)
        index = (
            self.starts[pick].view(-1, 1, 1, 1)
            + (channel * height.view(-1, 1, 1, 1) + row_index) * width.view(-1, 1, 1, 1)
            + col_index
        )
        return self.flat[index].to(torch.float32) / self.scale

    def draw(
        self,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        second: bool = False,
        levels: bool = False,
    ) -> dict:
        """A training batch: ``noisy`` and ``clean``, ``B x C x p x p`` on ``device`` (and ``noisy2``, a second
        independent noise draw, with ``second``; ``noise_level``, the noise's standard deviation map, with
        ``levels``)."""
        clean = self.clean(batch_size, device, generator)
        noisy, level = self.noise.draw_batch(clean, generator)
        batch = {"noisy": noisy, "clean": clean}
        if second:
            batch["noisy2"] = self.noise.batch(clean, generator)
        if levels:
            batch["noise_level"] = level
        return batch


def _uniform_below(limits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform integer in ``[0, limit)`` for each entry of ``limits`` (drawn in float64: no visible bias)."""
    draw = torch.rand(limits.shape, generator=generator, device=limits.device, dtype=torch.float64)
    return torch.minimum((draw * limits).long(), limits - 1)


class DrawTickets(torch.utils.data.IterableDataset):
    """The training "dataset" of ``data.on_device``: one ticket (the batch's index in the epoch) per step, turned
    into a batch on the device by the datamodule. Iterable, so Lightning does not shard it (each rank draws its
    own batches); ``batches_done`` skips the batches a resumed epoch already trained on."""

    def __init__(self, steps: int, batches_done=None) -> None:
        self.steps = steps
        self.batches_done = batches_done or (lambda: 0)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        return iter([{"draw": index} for index in range(self.batches_done(), self.steps)])
