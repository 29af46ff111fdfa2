"""Campaign images: decoded, resized and re-encoded as JPEG on upload, never served as sent.

Re-encoding drops metadata (EXIF location) and anything a crafted file carries besides
pixels; the result must fit ``STUDIO_IMAGE_MAX_KB`` so the landing stays light.
"""
from __future__ import annotations

import hashlib
import io

from PIL import Image, UnidentifiedImageError

from .model import S_

MAX_SIDE = (640, 360)
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
QUALITIES = (75, 65, 55, 45, 35)


class ImageRejected(ValueError):
    """The upload is not an image we can use; ``reason`` is a message id."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def reencode(data: bytes, max_bytes: int) -> tuple[bytes, int, int]:
    """Return ``(jpeg, width, height)`` for an uploaded image, or raise ImageRejected."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise ImageRejected(S_("The image is too large to process."))
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB")
            image.thumbnail(MAX_SIDE)
            for quality in QUALITIES:
                out = io.BytesIO()
                image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
                if out.tell() <= max_bytes:
                    return out.getvalue(), image.width, image.height
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise ImageRejected(S_("The file is not a picture (use JPEG, PNG or WebP).")) from None
    raise ImageRejected(S_("The image does not fit the page budget even after shrinking it."))


def image_id(jpeg: bytes) -> str:
    """The content address of a re-encoded image."""
    return hashlib.sha256(jpeg).hexdigest()[:24]
