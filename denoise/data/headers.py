"""What an image file says besides its pixels, and what a viewer does with it: the size (read before anything is
decoded), the EXIF orientation a phone records instead of turning the pixels (applied on read, so that what the
suite sees and writes is upright, as every viewer shows it), and whether a file is gray with alpha (which OpenCV
decodes as four channels: it stays two here, and is written back as gray with alpha).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the EXIF tag of the orientation, and what each value asks a viewer to do to the stored pixels (H x W x C)
ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # turned 90 degrees clockwise to view
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, 1),  # turned 90 degrees counter-clockwise to view
}


@dataclass(frozen=True)
class Header:
    """An image file's stored size, its EXIF orientation (1: as stored) and whether it is gray with alpha."""

    height: int
    width: int
    orientation: int = 1
    gray_alpha: bool = False

    @property
    def upright_size(self) -> tuple[int, int]:
        """``(height, width)`` as a viewer shows the image: swapped by the orientations that turn it a quarter."""
        return (self.width, self.height) if self.orientation in (5, 6, 7, 8) else (self.height, self.width)


def read_header(path: Path) -> Header:
    """The header of ``path`` through Pillow, which decodes nothing (its errors are the caller's to name)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the suite's own pixel limit replaces Pillow's (which names no file)
    with Image.open(path) as image:
        width, height = image.size
        if image.format == "PNG":  # Pillow's getexif() would decode a PNG's pixels to find a late eXIf chunk
            exif = Image.Exif()
            if image.info.get("exif"):
                exif.load(image.info["exif"])
        else:
            exif = image.getexif()
        orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        gray_alpha = image.mode in ("LA", "La") or (image.format == "PNG" and _png_colour_type(path) == 4)
    return Header(height, width, orientation if orientation in range(1, 9) else 1, gray_alpha)


def _png_colour_type(path: Path) -> int:
    """The colour type byte of a PNG's IHDR (4: gray with alpha, which Pillow opens as RGBA at 16 bits)."""
    with path.open("rb") as handle:
        header = handle.read(26)
    return header[25] if len(header) == 26 and header[12:16] == b"IHDR" else -1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels (``H x W x C``) as a viewer shows them under the EXIF ``orientation``."""
    turn = _UPRIGHT.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_gray_alpha_png(image: np.ndarray) -> bytes:
    """A gray-with-alpha ``H x W x 2`` uint8 or uint16 array as a PNG of that kind (colour type 4), which OpenCV
    cannot write: the PNG format's own layout (big-endian samples, each row after a filter byte of 0)."""
    if image.ndim != 3 or image.shape[2] != 2 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected an H x W x 2 uint8 or uint16 array, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    depth = 8 if image.dtype == np.uint8 else 16
    samples = image.astype(">u2") if depth == 16 else image
    rows = np.concatenate([np.zeros((height, 1), np.uint8), samples.reshape(height, -1).view(np.uint8)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, depth, 4, 0, 0, 0)
    data = zlib.compress(rows.tobytes(), 6)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
