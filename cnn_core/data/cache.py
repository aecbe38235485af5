"""Decoded image folders kept on disk, so the second load of 10,000 photos takes a fraction of a second.

The key is everything the decoded tensors depend on: each file's relative path, size and modification time,
the classes, and the chosen size, channels and fit. Change any image (or the size) and the key changes, so
a stale cache is never read. Cache files are safetensors (plain arrays and a JSON header, never pickle),
written atomically; a damaged one is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from cnn_core.data.folders import FolderImages, Listing, Progress, decode, list_images
from cnn_core.files import atomic_write

CACHE_VERSION = 1  # bump when decoding changes, so older caches are not mistaken for current ones
KEEP = 8  # cache files kept per folder; older ones are removed when a new one is written


def cache_key(listing: Listing, size: int, channels: int | str, fit: str) -> str:
    described = [CACHE_VERSION, size, channels, fit, listing.split, listing.classes, listing.files]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


def _read(path: Path) -> FolderImages | None:
    try:
        arrays = load_arrays(path.read_bytes())
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        is_test = arrays["is_test"].astype(bool) if meta["split"] else None
        skipped = [tuple(item) for item in meta["skipped"]]
        return FolderImages(arrays["images"], arrays["labels"], is_test, meta["classes"], skipped)
    except (OSError, SafetensorError, KeyError, ValueError, TypeError):
        return None  # missing or damaged: decode again


def _write(path: Path, images: FolderImages) -> None:
    meta = {"classes": images.classes, "skipped": images.skipped, "split": images.is_test is not None}
    arrays = {
        "images": np.ascontiguousarray(images.images),
        "labels": images.labels,
        "is_test": (images.is_test if images.is_test is not None else np.zeros(0, bool)).astype(np.uint8),
        "__meta__": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save_arrays(arrays))
    for old in sorted(path.parent.glob("decoded-*.safetensors"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
        old.unlink(missing_ok=True)


def load_image_folder(
    folder: str | os.PathLike[str],
    size: int,
    channels: int | str = "auto",
    fit: str = "crop",
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    listing: Listing | None = None,
    order: list[str] | None = None,
) -> tuple[FolderImages, bool]:
    """A folder's images decoded (or read from the cache in ``cache_dir``), and whether the cache was used.
    ``listing``: the folder's ``list_images``, when the caller already has it (saves a second walk); ``order``:
    the classes' order (a named dataset's saved one)."""
    listing = listing if listing is not None else list_images(folder, order=order)
    path = cache_dir / f"decoded-{cache_key(listing, size, channels, fit)[:32]}.safetensors" if cache_dir else None
    if path is not None and (cached := _read(path)) is not None:
        return cached, True
    images = decode(listing, size, channels, fit, progress)
    if path is not None:
        _write(path, images)
    return images, False
