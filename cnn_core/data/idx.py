"""IDX files, the format MNIST and its cousins ship in: read safely (bounded), written for the bundled sample.

This module needs numpy, not torch, so ``prefetch_idx_folder`` can read a command's data on a thread while the
command imports torch (it sits outside ``cnn_core.data``, whose package imports torch).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeAlias, cast

import numpy as np

from cnn_core.errors import BadDataset, DatasetNotFound
from cnn_core.files import atomic_write

# Train images, train labels, and test images and labels (both None when there is no test set).
IdxArrays: TypeAlias = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]

IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_TYPES = {0x08: np.uint8}  # the MNIST family is all unsigned bytes; other IDX types are refused
# EMNIST ByClass, the largest IDX set in use, is 550 MB of pixels; a header promising more than 1 GiB is a lie
# (or a gzip bomb), refused before anything is read or allocated.
MAX_IDX_BYTES = 1 << 30
_READ_CHUNK = 16 << 20
_INFLATE_INPUT = 4 << 20  # compressed bytes given to zlib per call
_ZLIB_REASONS = {
    "incorrect data check": "CRC check failed: the data does not match its checksum",
    "incorrect length check": "length check failed: the data is not as long as its trailer says",
    "incorrect header check": "not a gzip file",
}
_prefetched: dict[str, Future[IdxArrays]] = {}  # folder (real path) -> its arrays being read on a thread


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzipped or not), the format MNIST and its cousins ship in.

    Only what the header promises is read (plus one byte, to notice trailing data), so a small ``.gz`` that
    inflates to gigabytes is refused after reading no more than its header said. Every failure is one line
    naming the file: ``DatasetNotFound`` when it cannot be opened, ``BadDataset`` when it is malformed.
    """
    name = os.fspath(path)
    opener = _GzipStream if name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            dims = _read_idx_header(fh, name)
            data = _read_promised(fh, int(np.prod(dims, dtype=np.int64)), name)
    except FileNotFoundError:
        raise DatasetNotFound(f"IDX file {name} does not exist") from None
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:  # EOFError: the gzip stream stops mid-way
        raise BadDataset(f"{name} is a damaged or truncated gzip file ({_one_line(err)})") from None
    except OSError as err:  # permissions, a folder, an I/O error: the file is there but cannot be read
        raise DatasetNotFound(f"cannot read IDX file {name}: {_one_line(err)}") from None
    return data.reshape(dims)


class _Reader(Protocol):
    """What the IDX reader needs of a file: an open file, or a ``_GzipStream``."""

    def read(self, size: int, /) -> bytes: ...

    def readinto(self, view: memoryview, /) -> int: ...


class _GzipStream:
    """A gzip file read through zlib in big calls, the members one after another (NUL padding between or after
    them skipped) as ``gzip`` reads them. ``gzip.GzipFile`` inflates 128 KB at a time and takes Python's lock back
    between pieces; calls of up to 4 MB of input and ``_READ_CHUNK`` of output let a reading thread run beside the
    main one (``prefetch_idx_folder``). The compressed file is read whole: at most ``MAX_IDX_BYTES`` plus 1 MiB."""

    pending: bytes | memoryview  # compressed input not yet given to zlib

    def __init__(self, path: str | os.PathLike[str], mode: str = "rb") -> None:
        limit = MAX_IDX_BYTES + (1 << 20)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(size + 1) if size <= limit else b""  # + 1: a file that grew since is noticed
        if size > limit or len(data) > limit:
            raise BadDataset(f"{os.fspath(path)} is larger than any IDX file accepted ({MAX_IDX_BYTES:,} bytes)")
        self.data, self.pos, self.pending = memoryview(data), 0, b""
        self.inflate = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer (its CRC is checked)

    def __enter__(self) -> _GzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.data, self.pending = memoryview(b""), b""

    def _next_input(self) -> bytes | memoryview:
        piece = self.data[self.pos : self.pos + _INFLATE_INPUT]
        self.pos += len(piece)
        return piece

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only where the data ends (an unfinished stream is an ``EOFError``)."""
        parts, got = [], 0
        while got < size:
            if self.inflate.eof:  # a member ended: another may follow
                rest = self.inflate.unused_data.lstrip(b"\0")
                while not rest and self.pos < len(self.data):
                    rest = bytes(self._next_input()).lstrip(b"\0")
                if not rest:
                    break
                self.inflate, self.pending = zlib.decompressobj(wbits=31), rest
            elif not self.pending:
                if self.pos >= len(self.data):
                    raise EOFError("the compressed data ends before its end-of-stream marker")
                self.pending = self._next_input()
            try:
                part = self.inflate.decompress(self.pending, size - got)
            except zlib.error as err:  # zlib's words ("Error -3 while decompressing data: ...") made plain
                reason = str(err).rsplit(": ", 1)[-1]
                raise gzip.BadGzipFile(_ZLIB_REASONS.get(reason, reason)) from None
            self.pending = self.inflate.unconsumed_tail
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def readinto(self, view: memoryview) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_idx_header(fh: _Reader, name: str) -> tuple[int, ...]:
    """The dimensions an IDX header declares, after checking its magic number, type and promised size."""
    magic = fh.read(4)
    if len(magic) < 4:
        raise BadDataset(f"{name} is too short to be an IDX file ({len(magic)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or not 1 <= ndim <= 4:
        raise BadDataset(f"{name} is not an IDX file (magic number 0x{magic.hex()})")
    if dtype_code not in _IDX_TYPES:
        raise BadDataset(f"{name}: IDX data type 0x{dtype_code:02x} is not supported, only unsigned bytes (0x08)")
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise BadDataset(f"{name} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw)
    size = int(np.prod(dims, dtype=np.int64))
    if size == 0:
        raise BadDataset(f"{name} holds no items (its header says shape {dims})")
    if size > MAX_IDX_BYTES:
        raise BadDataset(f"{name}: its header promises {size:,} bytes, more than the {MAX_IDX_BYTES:,} accepted")
    return dims


def _read_promised(fh: _Reader, size: int, name: str) -> np.ndarray:
    """Exactly ``size`` bytes, in chunks, then one more read to make sure nothing follows."""
    buffer = np.empty(size + 1, np.uint8)  # untouched pages cost no memory if the file turns out short
    view, got = memoryview(buffer), 0  # type: ignore[arg-type]  # numpy: no __buffer__ before 3.12
    while got <= size:
        n = fh.readinto(view[got : min(got + _READ_CHUNK, size + 1)])
        if not n:
            break
        got += n
    if got < size:
        raise BadDataset(f"{name} is truncated: {got:,} of {size:,} values")
    if got > size:
        raise BadDataset(f"{name} holds more data than its header declares ({size:,} values)")
    return buffer[:size]


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (used to build the bundled sample)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=9, mtime=0) as fh:
        fh.write(header + array.tobytes())  # mtime=0: the same digits give the same bytes
    atomic_write(path, packed.getvalue())  # a crash or a full disk leaves the old file, never half a new one


def find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx"), f"{stem.replace('-idx', '.idx')}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_folder(folder: str | os.PathLike[str]) -> IdxArrays:
    """Train images/labels and, when present, test images/labels from the four standard IDX files (what
    ``prefetch_idx_folder`` started reading, when it did: its errors are raised here, as if read now)."""
    pending = _prefetched.pop(os.path.realpath(folder), None)
    return pending.result() if pending is not None else _read_idx_folder(folder)


def prefetch_idx_folder(folder: str | os.PathLike[str]) -> None:
    """Start reading ``folder``'s IDX files on a thread, for the next ``load_idx_folder(folder)`` to take. zlib
    inflates without Python's lock, so the files are read while the command imports torch (0.35 s of a
    Fashion-MNIST training process on a 2-core CPU). A folder without IDX files is left to the usual loader."""
    if has_idx_files(folder):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idx-prefetch")
        _prefetched[os.path.realpath(folder)] = pool.submit(_read_idx_folder, folder)
        pool.shutdown(wait=False)


def _read_idx_folder(folder: str | os.PathLike[str]) -> IdxArrays:
    folder = Path(folder)
    paths = [find_idx(folder, stem) for stem in IDX_STEMS]
    if paths[0] is None or paths[1] is None:
        raise DatasetNotFound(f"no {IDX_STEMS[0]}[.gz] and {IDX_STEMS[1]}[.gz] in {folder}")
    if paths[2] is None or paths[3] is None:
        paths[2] = paths[3] = None  # test images without labels (or labels without images) are no test set
    arrays = [read_idx(p) if p is not None else None for p in paths]
    for i in (0, 2):
        images_path, labels_path, images, labels = paths[i], paths[i + 1], arrays[i], arrays[i + 1]
        if images_path is not None and labels_path is not None and images is not None and labels is not None:
            _check_idx_pair(images_path, images, labels_path, labels)
    return cast(IdxArrays, (arrays[0], arrays[1], arrays[2], arrays[3]))  # the training pair is always there


def _check_idx_pair(images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray) -> None:
    """Images must be N×H×W and labels N, one label per image."""
    if images.ndim != 3:
        raise BadDataset(f"{images_path} holds {images.ndim}-D data; images must be 3-D (count × height × width)")
    if labels.ndim != 1:
        raise BadDataset(f"{labels_path} holds {labels.ndim}-D data; labels must be 1-D (one per image)")
    if len(images) != len(labels):
        raise BadDataset(f"{images_path} has {len(images):,} images but {labels_path} has {len(labels):,} labels")


def has_idx_files(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds at least the training images and labels as IDX files."""
    return all(find_idx(Path(folder), stem) for stem in IDX_STEMS[:2])
