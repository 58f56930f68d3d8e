"""SIDD sRGB, the Smartphone Image Denoising Dataset (Abdelhamed, Lin, Brown, CVPR 2018), in its published
layouts; this file knows only where SIDD keeps its files.

* SIDD_Small_sRGB_Only: ``Data/<scene>/GT_SRGB_010.PNG`` + ``NOISY_SRGB_010.PNG`` (160 pairs);
* SIDD_Medium_Srgb: ``Data/<scene>/<id>_GT_SRGB_010.PNG`` + ``<id>_NOISY_SRGB_010.PNG`` and ``_011`` (320 pairs).

Both are detected automatically, and pairs are matched by name (``NOISY`` -> ``GT``), never by sorted
position. Scene folders are ``<instance>_<scene>_<phone>_<ISO>_<shutter>_<temperature>_<brightness>``;
the fields become per-pair metadata and the instance is the unit of the train/val split.

The standard validation (``ValidationNoisyBlocksSrgb.mat`` / ``ValidationGtBlocksSrgb.mat``: uint8,
40 x 32 x 256 x 256 x 3) is read with scipy.io (MATLAB v5) or h5py (v7.3) when present under the root and
scored as the mean of the 1280 per-block PSNRs. ``BenchmarkNoisyBlocksSrgb.mat`` is the benchmark's input;
:func:`write_submission` writes the Kaggle ``SubmitSrgb.csv`` and the ``SubmitSrgb.mat`` of the SIDD site.
"""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import numpy as np

from denoise.data.files import atomic_open
from denoise.data.io import ImageReadError
from denoise.data.pairs import ImagePair, split_by_group, split_three_ways

PUBLISHED = "https://www.eecs.yorku.ca/~kamel/sidd/dataset.php (SIDD_Small_sRGB_Only, SIDD_Medium_Srgb, .mat blocks)"
LAYOUT = f"""Expected a SIDD sRGB release under data.root:
  <root>/Data/<scene>/GT_SRGB_010.PNG and NOISY_SRGB_010.PNG                    (SIDD_Small_sRGB_Only)
  <root>/Data/<scene>/<id>_GT_SRGB_010.PNG and <id>_NOISY_SRGB_010.PNG, _011 too (SIDD_Medium_Srgb)
  (<root> may also be the folder that holds SIDD_Small_sRGB_Only/ or SIDD_Medium_Srgb/)
  <scene> is <instance>_<scene>_<phone>_<ISO>_<shutter>_<temperature>_<brightness>, e.g. 0001_001_S6_00100_00060_3200_L
  optional beside Data/: ValidationNoisyBlocksSrgb.mat, ValidationGtBlocksSrgb.mat, BenchmarkNoisyBlocksSrgb.mat
SIDD is published at {PUBLISHED}."""

PHONES = {
    "GP": "Google Pixel",
    "IP": "iPhone 7",
    "S6": "Samsung Galaxy S6 Edge",
    "N6": "Motorola Nexus 6",
    "G4": "LG G4",
}
BRIGHTNESS = {"L": "low", "N": "normal", "H": "high"}
NOISY_FILE = re.compile(r"^(?:(?P<id>\d+)_)?NOISY_SRGB_(?P<capture>\d{3})\.png$", re.IGNORECASE)
GT_FILE = re.compile(r"^(?:(?P<id>\d+)_)?GT_SRGB_(?P<capture>\d{3})\.png$", re.IGNORECASE)
VALIDATION_NOISY, VALIDATION_GT = "ValidationNoisyBlocksSrgb", "ValidationGtBlocksSrgb"
BENCHMARK_NOISY = "BenchmarkNoisyBlocksSrgb"
BLOCKS_SHAPE = (40, 32, 256, 256, 3)


def find_data_dir(root: str | Path) -> Path:
    """The ``Data/`` folder of either release, with the expected layout in the error."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root={root}: no such folder.\n{LAYOUT}")
    for candidate in (root / "Data", root / "SIDD_Medium_Srgb" / "Data", root / "SIDD_Small_sRGB_Only" / "Data"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"data.root={root} has no Data/ folder.\n{LAYOUT}")


def parse_scene(folder: str) -> dict[str, object]:
    """``0001_001_S6_00100_00060_3200_L`` -> instance, scene, phone, ISO, shutter, temperature, brightness."""
    parts = folder.split("_")
    if (
        len(parts) != 7
        or parts[2] not in PHONES
        or parts[6] not in BRIGHTNESS
        or not all(p.isdigit() for p in (parts[0], parts[1], parts[3], parts[4], parts[5]))
    ):
        raise ValueError(
            f"SIDD scene folder {folder!r} does not match <instance>_<scene>_<phone>_<ISO>_<shutter>_"
            f"<temperature>_<brightness> (phones {sorted(PHONES)}, brightness {sorted(BRIGHTNESS)})"
        )
    return {
        "instance": parts[0], "scene": parts[1], "phone": parts[2], "camera": PHONES[parts[2]],
        "iso": int(parts[3]), "shutter": int(parts[4]), "temperature": int(parts[5]),
        "brightness": BRIGHTNESS[parts[6]],
    }  # fmt: skip


def scan(root: str | Path) -> list[ImagePair]:
    """Every noisy/clean pair under ``root``, matched by name; any orphan is an error naming the file."""
    data = find_data_dir(root)
    scenes = sorted(p for p in data.iterdir() if p.is_dir())
    if not scenes:
        raise FileNotFoundError(f"{data} holds no scene folders.\n{LAYOUT}")
    pairs = []
    for scene in scenes:
        meta = parse_scene(scene.name)
        files = {p.name: p for p in scene.iterdir() if p.is_file()}
        noisy = sorted(n for n in files if NOISY_FILE.match(n))
        clean = sorted(n for n in files if GT_FILE.match(n))
        if not noisy and not clean:
            raise FileNotFoundError(f"SIDD scene folder {scene} holds no GT_SRGB/NOISY_SRGB PNG files.\n{LAYOUT}")
        for name in clean:
            if name.replace("GT_", "NOISY_") not in files:
                raise FileNotFoundError(f"{scene / name} has no noisy twin: {name.replace('GT_', 'NOISY_')} is missing")
        for name in noisy:
            twin = name.replace("NOISY_", "GT_")
            if twin not in files:
                raise FileNotFoundError(f"{scene / name} has no clean twin: {twin} is missing")
            capture = NOISY_FILE.match(name).group("capture")
            pairs.append(
                ImagePair(
                    noisy=files[name], clean=(files[twin],), name=f"{scene.name}/{capture}", dataset="sidd",
                    group=str(meta["instance"]), meta={**meta, "capture": capture},
                )
            )  # fmt: skip
    return pairs


def find_mat(root: str | Path, stem: str) -> Path | None:
    """``<stem>.mat`` directly under the root or one folder below it."""
    root = Path(root).expanduser()
    for candidate in (root / f"{stem}.mat", *sorted(root.glob(f"*/{stem}.mat"))):
        if candidate.is_file():
            return candidate
    return None


def read_mat_blocks(path: str | Path, key: str) -> np.ndarray:
    """A uint8 ``40 x 32 x 256 x 256 x 3`` block array from a MATLAB v5 (scipy.io) or v7.3 (h5py) file."""
    import scipy.io

    path = Path(path)
    try:
        variables = scipy.io.loadmat(path, variable_names=[key])
        if key not in variables:
            raise KeyError(key)
        blocks = variables[key]
    except NotImplementedError:  # MATLAB v7.3 is HDF5; h5py sees the dimensions in reverse order
        import h5py

        with h5py.File(path, "r") as handle:
            if key not in handle:
                raise KeyError(f"{path} has no variable {key!r} (it has {sorted(handle)})") from None
            blocks = np.asarray(handle[key][()]).transpose(*reversed(range(handle[key].ndim)))
    except KeyError:
        raise KeyError(f"{path} has no variable {key!r}") from None
    except (ValueError, OSError) as err:
        raise ImageReadError(f"{path} is not a readable MATLAB .mat file: {err}") from err
    if blocks.dtype != np.uint8 or blocks.ndim != 5 or blocks.shape[2:] != BLOCKS_SHAPE[2:]:
        raise ImageReadError(
            f"{path}: {key} is {blocks.dtype} {blocks.shape}; expected uint8 blocks shaped {BLOCKS_SHAPE}"
        )
    return np.ascontiguousarray(blocks)


def block_names(blocks: np.ndarray, prefix: str) -> list[str]:
    return [f"{prefix}_{i:02d}_{j:02d}" for i in range(blocks.shape[0]) for j in range(blocks.shape[1])]


def block_to_base64(block: np.ndarray) -> str:
    """The Kaggle SIDD submission's BLOCK: base64 of the uint8 block's bytes (C order, H x W x 3)."""
    return base64.b64encode(np.ascontiguousarray(block, dtype=np.uint8).tobytes()).decode("ascii")


def base64_to_block(text: str, shape: tuple[int, ...] = (256, 256, 3)) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)


def read_submission(path: str | Path, shape: tuple[int, ...] = (256, 256, 3)) -> tuple[list[int], np.ndarray]:
    """IDs and decoded blocks of a ``SubmitSrgb.csv`` (a BLOCK field is 262,144 characters, over csv's
    default field limit)."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [int(r["ID"]) for r in rows], np.stack([base64_to_block(r["BLOCK"], shape) for r in rows])


def write_submission(out_dir: str | Path, denoised: np.ndarray, seconds_per_megapixel: float) -> tuple[Path, Path]:
    """``SubmitSrgb.csv`` (columns ID 0..N-1 and BLOCK) and ``SubmitSrgb.mat`` (``DenoisedBlocksSrgb``, a
    40 x 32 cell, and ``TimeMPSrgb``) from uint8 blocks shaped ``images x blocks x 256 x 256 x 3``."""
    import scipy.io

    if denoised.dtype != np.uint8 or denoised.ndim != 5:
        raise ValueError(f"expected uint8 blocks shaped like {BLOCKS_SHAPE}, got {denoised.dtype} {denoised.shape}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, mat_path = out_dir / "SubmitSrgb.csv", out_dir / "SubmitSrgb.mat"
    flat = denoised.reshape(-1, *denoised.shape[2:])
    with atomic_open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "BLOCK"])
        for index, block in enumerate(flat):
            writer.writerow([index, block_to_base64(block)])
    cell = np.empty(denoised.shape[:2], dtype=object)
    for i in range(denoised.shape[0]):
        for j in range(denoised.shape[1]):
            cell[i, j] = denoised[i, j]
    with atomic_open(mat_path, "wb") as handle:
        scipy.io.savemat(handle, {"DenoisedBlocksSrgb": cell, "TimeMPSrgb": np.array([[seconds_per_megapixel]])})
    return csv_path, mat_path


class SIDD:
    """The SIDD layout: pairs split by scene instance, plus the official validation and benchmark blocks."""

    name = "sidd"

    def __init__(
        self,
        root: str,
        val_fraction: float = 0.1,
        val_instances: list[str] | None = None,
        use_validation_blocks: bool = True,
        test_fraction: float = 0.1,
    ) -> None:
        """``test_fraction``: the scene instances held out for the test where the official validation blocks are not
        under the root (their own, never the validation's: a test on the validation scenes repeats the best
        validation score)."""
        self.root = Path(root).expanduser()
        self.val_fraction, self.val_instances = val_fraction, val_instances
        self.use_validation_blocks, self.test_fraction = use_validation_blocks, test_fraction
        self._splits: dict[str, list[ImagePair]] | None = None

    def splits(self) -> dict[str, list[ImagePair]]:
        """train / val / test pairs, held out by scene instance (``val_instances`` for val where given); val and
        test are the official validation blocks instead when they are under the root (:meth:`blocks`)."""
        if self._splits is None:
            pairs = scan(self.root)
            if self.val_instances is not None:
                rest, val = split_by_group(pairs, 0.0, [f"{int(i):04d}" for i in self.val_instances])
                train, test = split_by_group(rest, self.test_fraction)
                self._splits = {"train": train, "val": val, "test": test}
            else:
                self._splits = split_three_ways(pairs, self.val_fraction, self.test_fraction)
        return self._splits

    def shares_test_with_validation(self) -> bool:
        """SIDD's official validation blocks are its test as well (the benchmark's ground truth is not public):
        a score on them is the validation's, which a run that picks its best checkpoint by it makes optimistic."""
        return bool(self.use_validation_blocks and find_mat(self.root, VALIDATION_NOISY)
                    and find_mat(self.root, VALIDATION_GT))  # fmt: skip

    def blocks(self, split: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """The official validation blocks (for val and test) when both .mat files are under the root."""
        if split == "train" or not self.use_validation_blocks:
            return None
        noisy_path, clean_path = find_mat(self.root, VALIDATION_NOISY), find_mat(self.root, VALIDATION_GT)
        if noisy_path is None or clean_path is None:
            return None
        noisy, clean = read_mat_blocks(noisy_path, VALIDATION_NOISY), read_mat_blocks(clean_path, VALIDATION_GT)
        if noisy.shape != clean.shape:
            raise ImageReadError(f"{noisy_path} {noisy.shape} and {clean_path} {clean.shape} differ in shape")
        names = block_names(noisy, "val")
        return noisy.reshape(-1, *noisy.shape[2:]), clean.reshape(-1, *clean.shape[2:]), names

    def benchmark(self) -> np.ndarray | None:
        """``BenchmarkNoisyBlocksSrgb`` (images x blocks x 256 x 256 x 3, uint8) when it is under the root."""
        path = find_mat(self.root, BENCHMARK_NOISY)
        return None if path is None else read_mat_blocks(path, BENCHMARK_NOISY)

    def write_benchmark(self, out_dir: str | Path, denoised: np.ndarray, seconds_per_megapixel: float) -> list[Path]:
        """``SubmitSrgb.csv`` and ``SubmitSrgb.mat`` for the denoised benchmark blocks (uint8)."""
        return list(write_submission(out_dir, denoised, seconds_per_megapixel))
