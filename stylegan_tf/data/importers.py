"""Importers for local copies of classic datasets, as the original tool has: MNIST and CIFAR-10.

Both end up in the official layout with one-hot labels, in the original's shuffled order (seed 123).
MNIST is padded from 28x28 to 32x32 with black, as the original does.
"""
import gzip
import os
import pickle
import struct

import numpy as np

from stylegan_tf.data import interrupts
from stylegan_tf.data.tfrecords import DatasetError
from stylegan_tf.safe_pickle import NUMPY_ARRAY_GLOBALS

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    # CIFAR's "python version" is a pickle: allow only what rebuilds numpy arrays, never arbitrary code.
    def find_class(self, module, name):
        if (module, name) in NUMPY_ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _load_pickle(path):
    try:
        with open(path, "rb") as f:
            return _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DatasetError(f"{path}: not a CIFAR batch ({e})") from None


def _read_idx(path, magic, ndim):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e}); download the MNIST .gz files into that folder") from None
    head = 4 + 4 * ndim
    if len(data) < head or struct.unpack(">I", data[:4])[0] != magic:
        raise DatasetError(f"{path}: not an MNIST idx file")
    dims = struct.unpack(">" + "I" * ndim, data[4:head])
    if len(data) - head != int(np.prod(dims)):
        raise DatasetError(f"{path}: truncated ({len(data) - head} bytes for shape {list(dims)})")
    return np.frombuffer(data, np.uint8, offset=head).reshape(dims)


def load_mnist(mnist_dir):
    images = _read_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte.gz"), 2051, 3)
    labels = _read_idx(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"), 2049, 1)
    if len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise DatasetError(f"{mnist_dir}: {len(images)} images of {images.shape[1:]} but {len(labels)} labels")
    images = np.pad(images[:, None], [(0, 0), (0, 0), (2, 2), (2, 2)])
    return images, labels.astype(np.int64), [str(d) for d in range(10)]


def load_cifar10(cifar_dir):
    """The 50,000 training images from the python (pickled) or the binary distribution."""
    images, labels = [], []
    if os.path.isfile(os.path.join(cifar_dir, "data_batch_1")):
        for k in range(1, 6):
            batch = _load_pickle(os.path.join(cifar_dir, f"data_batch_{k}"))
            if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
                raise DatasetError(f"{cifar_dir}/data_batch_{k}: not a CIFAR-10 batch")
            images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch["labels"], np.int64))
    elif os.path.isfile(os.path.join(cifar_dir, "data_batch_1.bin")):
        for k in range(1, 6):
            raw = np.fromfile(os.path.join(cifar_dir, f"data_batch_{k}.bin"), np.uint8)
            if raw.size % 3073:
                raise DatasetError(f"{cifar_dir}/data_batch_{k}.bin: truncated")
            raw = raw.reshape(-1, 3073)
            labels.append(raw[:, 0].astype(np.int64))
            images.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    else:
        raise DatasetError(f"{cifar_dir}: no data_batch_1 (python version) or data_batch_1.bin (binary version)")
    labels = np.concatenate(labels)
    if labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"{cifar_dir}: labels outside 0..9")
    return np.concatenate(images), labels, list(CIFAR10_CLASSES)


@interrupts.stop_on_signals()
def write_arrays(tfrecord_dir, images_nchw, labels, label_names, source, tool, shuffle=True, seed=123,
                 overwrite=False):
    """Write uint8 [N, C, R, R] images with integer class labels as a dataset, in the shuffled order."""
    from stylegan_tf.data.pyramid import build_pyramid
    from stylegan_tf.data.reader import open_dataset
    from stylegan_tf.data.tfrecords import (DatasetWriter, check_output, dataset_bytes, explain_disk_full,
                                            output_dir, write_metadata)

    tfrecord_dir = os.path.abspath(os.fspath(tfrecord_dir))
    check_output(tfrecord_dir, overwrite)
    n, c, r, _ = images_nchw.shape
    order = np.arange(n)
    if shuffle:
        np.random.RandomState(seed).shuffle(order)
    onehot = np.eye(len(label_names), dtype=np.float32)[labels[order]]
    name = os.path.basename(tfrecord_dir)
    with explain_disk_full(tfrecord_dir, dataset_bytes(n, r, c)), \
            interrupts.guarded(output_dir(tfrecord_dir, overwrite)) as tmp:
        with DatasetWriter(tmp, name, r, c) as w:
            for i in order:
                interrupts.check()
                w.add(build_pyramid(np.ascontiguousarray(images_nchw[i])))
            w.write_labels(onehot)
        write_metadata(tmp, tool, {
            "name": name, "count": int(n), "resolution": int(r), "channels": int(c),
            "levels": [r >> k for k in range(int(np.log2(r)) - 1)], "label_size": len(label_names),
            "label_names": label_names, "source": os.path.abspath(source),
            "options": {"shuffle": bool(shuffle), "seed": int(seed)}, "skipped": 0})
    return open_dataset(tfrecord_dir)


def create_mnist(tfrecord_dir, mnist_dir, **kw):
    images, labels, names = load_mnist(mnist_dir)
    return write_arrays(tfrecord_dir, images, labels, names, mnist_dir, "stylegan_tf create_mnist", **kw)


def create_cifar10(tfrecord_dir, cifar_dir, **kw):
    images, labels, names = load_cifar10(cifar_dir)
    return write_arrays(tfrecord_dir, images, labels, names, cifar_dir, "stylegan_tf create_cifar10", **kw)
