"""Look at a dataset: info, extract (PNGs), grid (one preview picture), compare (two datasets)."""
import os

import numpy as np

from stylegan_tf.data.reader import open_dataset
from stylegan_tf.data.tfrecords import DatasetError


def _human(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def describe(path):
    """A few lines for `dataset_tool.py info`; every level's record count is checked (open_dataset)."""
    info = open_dataset(path)
    size = sum(os.path.getsize(os.path.join(info.path, f)) for f in os.listdir(info.path)
               if os.path.isfile(os.path.join(info.path, f)))
    lines = [
        f"dataset     {info.path}",
        f"images      {info.num_images}",
        f"resolution  {info.resolution}x{info.resolution}, {info.num_channels} channel(s)",
        # open_dataset has counted the records of every level and refused unequal counts.
        "levels      " + ", ".join(f"{r}:{info.num_images}" for r in info.levels) + " (all equal)",
        f"labels      {info.label_size}" + (f" ({', '.join(info.label_names)})" if info.label_names else ""),
        f"on disk     {_human(size)}",
    ]
    if info.attributes:
        lines.append(f"attributes  {', '.join(info.attributes)}")
    meta = info.metadata
    if meta.get("skipped"):
        lines.append(f"skipped     {meta['skipped']} source files (see skipped.json)")
    if meta.get("source"):
        lines.append(f"source      {meta['source']}")
    return "\n".join(lines)


def _resolution_for(info, level):
    level = int(level or 0)
    if level < 0 or (info.resolution >> level) not in info.levels:
        raise DatasetError(f"--level {level} is out of range: this dataset has levels 0..{len(info.levels) - 1}")
    return info.resolution >> level


def extract(path, out_dir, level=0, max_images=None):
    """Write the images (of level `level`: 0 = full resolution, 1 = half, ...) as PNGs; returns the count."""
    from stylegan_tf.image_grid import save_image
    info = open_dataset(path)
    res = _resolution_for(info, level)
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for batch in info.iterate_uint8(resolution=res, max_images=max_images, batch_size=64):
        for image in batch:
            save_image(image, os.path.join(out_dir, f"img{n:08d}.png"))
            n += 1
    return n


def grid(path, out_png, count=64, level=0, pad=0):
    """Save the first `count` images tiled in one picture; returns its (rows, cols)."""
    from stylegan_tf.image_grid import grid_shape, make_grid, save_image
    info = open_dataset(path)
    res = _resolution_for(info, level)
    images = np.concatenate(list(info.iterate_uint8(resolution=res, max_images=count, batch_size=count)))
    shape = grid_shape(len(images))
    save_image(make_grid(images, shape, pad=pad), out_png)
    return shape


def compare(path_a, path_b):
    """Record-by-record comparison: dict with counts of identical images and labels."""
    a, b = open_dataset(path_a), open_dataset(path_b)
    result = {"images_a": a.num_images, "images_b": b.num_images, "identical_images": 0,
              "identical_labels": 0, "compared": min(a.num_images, b.num_images),
              "same_shape": (a.resolution, a.num_channels) == (b.resolution, b.num_channels)}
    if not result["same_shape"]:
        return result
    ita, itb = a.iterate_uint8(batch_size=256, with_labels=True), b.iterate_uint8(batch_size=256, with_labels=True)
    for (xa, la), (xb, lb) in zip(ita, itb):
        n = min(len(xa), len(xb))
        result["identical_images"] += int(np.sum(np.all((xa[:n] == xb[:n]).reshape(n, -1), axis=1)))
        if la.shape[1] == lb.shape[1]:
            result["identical_labels"] += int(np.sum(np.all(la[:n] == lb[:n], axis=1)))
    return result
