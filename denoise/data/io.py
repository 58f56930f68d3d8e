"""Image reading and writing at any supported bit depth, with errors that name the file.

Images are float32 ``H x W x C`` arrays in [0, 1] in memory; 8-bit files are scaled by 255 and 16-bit
files by 65535, and :func:`write_image` writes back at the depth asked for, so round trips are exact.
OpenCV is used because Pillow cannot read 16-bit RGB PNG/TIFF. What the header says besides the pixels is honoured
(:mod:`denoise.data.headers`): a photo's EXIF orientation is applied on read (sizes are the upright ones), and a
gray image with alpha stays two channels (gray, alpha), written back as such.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from denoise.data.files import write_bytes
from denoise.data.headers import Header, encode_gray_alpha_png, read_header, upright

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: the largest image the suite decodes unless ``DENOISE_MAX_PIXELS`` says otherwise: 150 megapixels (a 100 MP
#: medium-format photo passes; a decompression bomb claiming 32000 x 32000 does not)
DEFAULT_MAX_PIXELS = 150_000_000
MAX_PIXELS_ENV = "DENOISE_MAX_PIXELS"
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class ImageReadError(ValueError):
    """An image file is missing, unreadable, or not of a supported format or bit depth."""


def list_images(folder: str | Path, key: str = "folder") -> list[Path]:
    """Sorted image files in ``folder``; a clear error if it is missing, not a folder, or holds no images."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        from denoise.data.catalog import hint_for  # the catalog is read only when a folder is missing

        hint = hint_for(folder)
        raise FileNotFoundError(f"{key}: folder {folder} does not exist (expected a folder of images){hint}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{key}: {folder} is not a folder (expected a folder of images)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"{key}: folder {folder} holds no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def max_pixels() -> int:
    """The largest image, in pixels, the suite decodes: :data:`DEFAULT_MAX_PIXELS`, or ``DENOISE_MAX_PIXELS``."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(float(value))
    except ValueError:
        raise ValueError(f"{MAX_PIXELS_ENV}={value!r}: expected a number of pixels, e.g. 150000000") from None
    if limit <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV}={value!r}: expected a positive number of pixels")
    return limit


def image_header(path: str | Path, limit: int | None = None) -> Header:
    """The file's header alone (no decoding), with an error naming the file. An image above ``limit`` pixels
    (:func:`max_pixels` by default) is refused here, before anything allocates it: a 1 MB PNG can claim
    32000 x 32000 pixels."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image file {path} does not exist")
    try:
        header = read_header(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(
            f"cannot read the header of image file {path}: it is corrupt or not an image (expected PNG, JPEG, TIFF "
            f"or BMP data; {type(err).__name__})"
        ) from None
    limit = max_pixels() if limit is None else limit
    height, width = header.height, header.width
    if height * width > limit:
        raise ImageReadError(
            f"image file {path} is {width}x{height} = {height * width / 1e6:.0f} megapixels, above the limit of "
            f"{limit / 1e6:g} megapixels ({MAX_PIXELS_ENV} raises it); refused before decoding"
        )
    return header


def image_size(path: str | Path, limit: int | None = None) -> tuple[int, int]:
    """``(height, width)`` as the image is seen (its EXIF orientation applied), from the header alone: for checking
    every input before training starts (:func:`image_header`)."""
    return image_header(path, limit).upright_size


def verify_image(path: str | Path, limit: int | None = None) -> tuple[int, int]:
    """:func:`image_size`, and the file's body is whole: a PNG's chunks up to IEND with their checksums, a
    JPEG's end-of-image marker, any other format decoded. A file cut off after a valid header fails here, before
    training, not when the test split reads it."""
    from PIL import Image

    height, width = image_size(path, limit)
    path = Path(path)
    try:
        with Image.open(path) as image:
            kind = image.format
            if kind == "PNG":
                image.verify()  # every chunk's CRC, through IEND
            elif kind == "JPEG":
                with path.open("rb") as handle:
                    handle.seek(max(0, path.stat().st_size - 4096))
                    if b"\xff\xd9" not in handle.read():
                        raise OSError("no end-of-image marker: the file is cut off")
            else:
                read_raw(path, limit)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageReadError(f"image file {path} is truncated or corrupt after its header ({err})") from None
    return height, width


def read_raw(path: str | Path, limit: int | None = None) -> np.ndarray:
    """Decode a file to its stored dtype (uint8 or uint16), ``H x W x C`` upright (its EXIF orientation applied),
    in gray, gray-alpha, RGB or RGBA channel order; its size is checked from the header first
    (:func:`image_header`)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image file {path} does not exist")
    header = image_header(path, limit)
    data = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile + imdecode handles non-ASCII paths
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as err:
        raise ImageReadError(f"cannot decode image file {path}: {str(err).strip().splitlines()[-1]}") from None
    if image is None:
        raise ImageReadError(
            f"cannot decode image file {path}: it is corrupt or not an image (expected PNG, JPEG, TIFF or BMP)"
        )
    if image.dtype not in _SCALE:
        raise ImageReadError(
            f"image file {path} has unsupported sample type {image.dtype}; expected 8-bit or 16-bit integers"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        if header.gray_alpha:  # decoded as RGBA with R = G = B: the gray and the alpha are what the file holds
            image = image[:, :, [0, 3]]
    return np.ascontiguousarray(upright(image, header.orientation))


# -- conversions: one name each, read as a type signature (KAIR's utils_image) --------------------------------
# uint: an 8- or 16-bit integer array H x W x C; single: a float32 array H x W x C in [0, 1];
# tensor: a float32 torch tensor C x H x W (a batch: B x C x H x W) in [0, 1].


def uint2single(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 ``H x W x C`` -> float32 in [0, 1] (each depth scaled by its own maximum)."""
    return image.astype(np.float32) / _SCALE[image.dtype]


def single2uint(image: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """float ``H x W x C`` in [0, 1] -> uint8 or uint16, rounded (not truncated) and clipped: what a saved PNG or
    a benchmark submission holds."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    return np.round(np.clip(image, 0.0, 1.0) * scale).astype(dtype)


def array2tensor(image: np.ndarray) -> torch.Tensor:
    """uint8/uint16/float ``H x W x C`` -> float32 tensor ``C x H x W`` in [0, 1] (uint2single for integers)."""
    array = uint2single(image) if image.dtype in _SCALE else image.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def tensor2single(image: torch.Tensor) -> np.ndarray:
    """A ``C x H x W`` tensor -> float32 ``H x W x C`` array on the CPU (values as they are: a filter's output may
    leave [0, 1])."""
    return np.ascontiguousarray(image.detach().float().permute(1, 2, 0).cpu().numpy())


def tensor2uint(image: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """A ``C x H x W`` tensor in [0, 1] -> uint8 (or uint16) ``H x W x C``, rounded: W&B and image files read
    integers."""
    return single2uint(tensor2single(image), bit_depth)  # clipped to [0, 1] there


def to_channels(image: np.ndarray, channels: int, path: str | Path = "<array>") -> np.ndarray:
    """Convert to 1 (BT.601 luma, as MATLAB's rgb2gray) or 3 channels; alpha (of gray-alpha or RGBA) is dropped."""
    if image.shape[2] in (2, 4):
        image = image[:, :, :-1]
    have = image.shape[2]
    if have == channels:
        return image
    if channels == 1 and have == 3:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float64)
        gray = image.astype(np.float64) @ weights
        if image.dtype != np.float32 and np.issubdtype(image.dtype, np.integer):
            gray = np.round(gray).astype(image.dtype)
        return gray.astype(image.dtype)[:, :, None]
    if channels == 3 and have == 1:
        return np.repeat(image, 3, axis=2)
    raise ImageReadError(f"image {path} has {have} channels; cannot convert to {channels}")


def read_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """Read an 8/16-bit image as float32 ``H x W x C`` in [0, 1], optionally converted to 1 or 3 channels."""
    raw = read_raw(path)
    if channels is not None:
        raw = to_channels(raw, channels, path)
    return uint2single(raw)


def write_image(path: str | Path, image: np.ndarray, bit_depth: int = 8, overwrite: bool = True) -> Path:
    """Write float [0, 1] ``H x W x C`` (or already-integer) data as an 8- or 16-bit image, rounding; the file
    lands whole or not at all, and ``overwrite=False`` never replaces an existing one. Two channels are gray and
    alpha: a gray-alpha PNG (other formats get RGBA with the gray in each colour)."""
    path = Path(path)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if np.issubdtype(image.dtype, np.floating):
        image = single2uint(image, bit_depth)
    if image.ndim == 3 and image.shape[2] == 2:
        if path.suffix.lower() == ".png":
            return write_bytes(path, encode_gray_alpha_png(image), overwrite=overwrite)
        image = image[:, :, [0, 0, 0, 1]]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise ValueError(f"cannot encode {path} (suffix {path.suffix!r})")
    return write_bytes(path, encoded.tobytes(), overwrite=overwrite)
