"""Read a PyTorch state dict (`.pth`) without PyTorch, and without running any code from the file.

A `.pth` is a pickle. Unpickling an arbitrary pickle can execute arbitrary code, so the unpickler here
resolves exactly the globals a plain state dict needs (tensor rebuild, typed storages, OrderedDict)
and refuses everything else with `UnsafePickleError`. Two containers are understood:

- the zip archive `torch.save` writes since PyTorch 1.6 (`<root>/data.pkl` + `<root>/data/<key>`), and
- the older "legacy" stream (magic number, protocol, system info, the pickle, then the raw storages),
  which is how pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` was published.
"""
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

# torch storage class name -> numpy dtype (little-endian, as torch writes them).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# A legacy file opens with its magic number pickled by protocol 2 (PROTO 2, LONG1 of 10 bytes): checked
# before any unpickling, so that a file of some other kind is named as such instead of failing deep inside.
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + _LEGACY_MAGIC.to_bytes(10, "little")


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for something other than tensors and dicts; it was not loaded."""


class _StorageType:
    """Stands in for `torch.FloatStorage` & co.: only its dtype matters to us."""

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A flat numpy buffer (what a torch storage is)."""

    def __init__(self, array):
        self.array = array


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    # Extra arguments (requires_grad, backward hooks, metadata) do not matter for inference weights.
    if not isinstance(storage, _Storage):
        raise UnsafePickleError("tensor rebuild got something that is not a storage")
    flat = storage.array
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise pickle.UnpicklingError("tensor size and stride disagree")
    count = int(np.prod(size)) if size else 1
    if count == 0:
        return np.zeros(size, dtype=flat.dtype)
    last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
    if storage_offset < 0 or last >= flat.size or min(stride, default=0) < 0:
        raise pickle.UnpicklingError("tensor reaches outside its storage (corrupt file)")
    view = np.lib.stride_tricks.as_strided(
        flat[storage_offset:], shape=size, strides=[st * flat.itemsize for st in stride], writeable=False)
    return np.array(view)  # own, contiguous copy


def _rebuild_parameter(data, requires_grad, backward_hooks, *_ignored):
    # `torch.save(model.state_dict())` never writes Parameters, but `torch.save(dict(model.named_parameters()))`
    # does; the payload is a tensor that went through `_rebuild_tensor_v2` already.
    if not isinstance(data, np.ndarray):
        raise UnsafePickleError("parameter rebuild got something that is not a tensor")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            f"refusing to load '{module}.{name}': only tensors and dicts are allowed in a weights file")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise UnsafePickleError(f"unsupported persistent object {str(pid)[:80]!r}")
        storage_type, key, _location, numel = pid[1], pid[2], pid[3], pid[4]
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError("storage of an unknown type")
        return self._load_storage(str(key), storage_type.dtype, int(numel))


def _check_state_dict(obj, path):
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    out = collections.OrderedDict()
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: entry {name!r} is not a named tensor; expected a plain state dict")
        out[name] = value
    return out


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError(f"{path}: zip file without exactly one data.pkl; not a torch.save file")
        root = pkl[0][:-len("data.pkl")]
        order_name = root + "byteorder"
        if order_name in names and archive.read(order_name).strip() not in (b"little", b""):
            raise ValueError(f"{path}: big-endian tensors are not supported")

        def load_storage(key, dtype, numel):
            data = archive.read(f"{root}data/{key}")
            if len(data) < numel * dtype.itemsize:
                raise ValueError(f"{path}: storage {key} is truncated")
            return _Storage(np.frombuffer(data, dtype=dtype, count=numel))

        return _Unpickler(io.BytesIO(archive.read(pkl[0])), load_storage).load()


def load_state_dict(path):
    """Read a `.pth` state dict into an OrderedDict name -> numpy array, without torch.

    Raises `UnsafePickleError` if the file contains anything but tensors and (ordered) dicts,
    `FileNotFoundError` if it is missing and `ValueError` if it is not a PyTorch weights file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            return _check_state_dict(_load_zip(path), path)
        with open(path, "rb") as f:
            if f.read(len(_LEGACY_HEAD)) != _LEGACY_HEAD:
                raise ValueError(f"{path}: not a PyTorch weights file (neither a torch.save zip archive nor "
                                 "the legacy format)")
        return _check_state_dict(_load_legacy_eager(path), path)
    except (UnsafePickleError, ValueError, OSError):
        raise
    except Exception as e:  # noqa: BLE001 - damaged bytes make the unpickler fail in many ways (even MemoryError)
        raise ValueError(f"{path}: damaged PyTorch weights file ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]})") from None


def _load_legacy_eager(path):
    """Legacy files store tensors before their bytes, so read the storages first, then unpickle."""
    # First pass: find storage sizes and the byte offset of each storage.
    with open(path, "rb") as f:
        header = [_Unpickler(f, None).load() for _ in range(3)]
        if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: not a PyTorch weights file (bad magic number)")
        if isinstance(header[2], dict) and not header[2].get("little_endian", True):
            raise ValueError(f"{path}: big-endian tensors are not supported")
        types = {}

        file_size = os.path.getsize(path)

        def note_storage(key, dtype, numel):
            if numel < 0 or numel * dtype.itemsize > file_size:
                raise ValueError(f"{path}: storage {key} claims {numel} elements, more than the file holds")
            types[key] = dtype
            return _Storage(np.zeros(max(numel, 1), dtype=dtype))

        pickle_start = f.tell()
        _Unpickler(f, note_storage).load()
        keys = _Unpickler(f, None).load()
        if not isinstance(keys, list):
            raise ValueError(f"{path}: corrupt storage list")
        storages = {}
        for key in keys:
            key = str(key)
            dtype = types.get(key, np.dtype("u1"))
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError(f"{path}: truncated file (storage {key})")
            (numel,) = struct.unpack("<q", raw)
            data = f.read(numel * dtype.itemsize)
            if len(data) != numel * dtype.itemsize:
                raise ValueError(f"{path}: truncated file (storage {key})")
            storages[key] = _Storage(np.frombuffer(data, dtype=dtype))
        # Second pass: unpickle again, now with the real storages.
        f.seek(pickle_start)
        return _Unpickler(f, lambda key, dtype, numel: storages[key]).load()
