"""The built-in demo dataset: procedural cartoon faces with known attributes (Pillow + numpy only).

A fresh machine has no images, yet `python train.py` must train on something where a GAN's progress is
easy to see. Each face is drawn at 4x (at most 1024 px) with bold outlines and flat, saturated colours,
then box-downsampled, so edges stay clean at 32-64 px. Face i depends only on (seed, i), so a dataset is
the same whatever the number of workers. Every attribute that drives the drawing is stored per image
(`<name>-attributes.npy`, columns described in dataset.json) for conditioning and attribute editing.
"""
import colorsys
import math
import os
import time

import numpy as np
from PIL import Image, ImageDraw

from stylegan_tf.data import interrupts
from stylegan_tf.data.pyramid import build_pyramid

SKIN_TONES = {"porcelain": (255, 233, 222), "fair": (252, 216, 192), "peach": (240, 190, 152),
              "tan": (212, 156, 112), "brown": (156, 102, 66), "dark": (100, 64, 44)}
HAIR_COLORS = {"black": (38, 36, 48), "brown": (116, 72, 40), "blonde": (244, 208, 108),
               "red": (204, 62, 36), "pink": (246, 138, 182), "blue": (58, 108, 222),
               "silver": (214, 220, 232), "purple": (138, 78, 192), "green": (66, 172, 108)}
EYE_COLORS = {"brown": (134, 78, 36), "blue": (38, 112, 232), "green": (36, 162, 78),
              "purple": (152, 68, 204), "red": (214, 40, 52), "gold": (232, 172, 28)}
FACE_SHAPES = ("round", "oval", "pointed")
HAIR_STYLES = ("short", "long", "bob", "twintails", "spiky")

# Column order of the attribute array. Categorical values are stored as the category index.
ATTRIBUTES = [
    {"name": "face_shape", "type": "categorical", "categories": list(FACE_SHAPES)},
    {"name": "skin_tone", "type": "categorical", "categories": list(SKIN_TONES)},
    {"name": "hair_color", "type": "categorical", "categories": list(HAIR_COLORS)},
    {"name": "hair_style", "type": "categorical", "categories": list(HAIR_STYLES)},
    {"name": "eye_color", "type": "categorical", "categories": list(EYE_COLORS)},
    {"name": "face_width", "type": "continuous", "range": [0.42, 0.52]},
    {"name": "eye_size", "type": "continuous", "range": [0.75, 1.3]},
    {"name": "smile", "type": "continuous", "range": [-1.0, 1.0]},
    {"name": "blush", "type": "continuous", "range": [0.0, 1.0]},
    {"name": "background_hue", "type": "continuous", "range": [0.0, 1.0]},
    {"name": "shirt_hue", "type": "continuous", "range": [0.0, 1.0]},
    {"name": "offset_x", "type": "continuous", "range": [-0.05, 0.05]},
    {"name": "offset_y", "type": "continuous", "range": [-0.04, 0.04]},
    {"name": "yaw", "type": "continuous", "range": [-1.0, 1.0]},
    {"name": "head_scale", "type": "continuous", "range": [0.9, 1.1]},
]
ATTRIBUTE_NAMES = [a["name"] for a in ATTRIBUTES]
CATEGORICAL = {a["name"]: a["categories"] for a in ATTRIBUTES if a["type"] == "categorical"}
_IS_CATEGORICAL = np.array([a["type"] == "categorical" for a in ATTRIBUTES])
_NUM_CATEGORIES = np.array([len(a.get("categories", ())) for a in ATTRIBUTES], np.float64)
_LOW = np.array([a.get("range", (0, 0))[0] for a in ATTRIBUTES], np.float64)
_HIGH = np.array([a.get("range", (0, 0))[1] for a in ATTRIBUTES], np.float64)


def sample_attributes(seed, index):
    """The attribute vector (float64, ATTRIBUTES order) of face `index` for `seed`."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])
    u = rng.random(len(ATTRIBUTES))  # one draw per attribute, vectorised: sampling is a visible cost
    return np.where(_IS_CATEGORICAL, np.floor(u * _NUM_CATEGORIES), _LOW + u * (_HIGH - _LOW)), rng


def _mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _shade(c, f):
    return tuple(int(max(0, min(255, round(x * f)))) for x in c)


def _hsv(h, s, v):
    return tuple(int(round(255 * x)) for x in colorsys.hsv_to_rgb(h % 1.0, s, v))


def draw_face(attrs, rng, size):
    """Draw one face as an RGB PIL image of `size` x `size`; `rng` adds the un-stored fine detail."""
    a = dict(zip(ATTRIBUTE_NAMES, attrs))
    S = float(size)
    skin = list(SKIN_TONES.values())[int(a["skin_tone"])]
    hair = list(HAIR_COLORS.values())[int(a["hair_color"])]
    iris = list(EYE_COLORS.values())[int(a["eye_color"])]
    shape = FACE_SHAPES[int(a["face_shape"])]
    style = HAIR_STYLES[int(a["hair_style"])]
    ink = (44, 30, 38)
    lw = max(1, int(round(S / 80)))
    img = Image.new("RGB", (size, size), _hsv(a["background_hue"], 0.42, 0.93))
    d = ImageDraw.Draw(img)

    def P(x, y):
        return (x * S, y * S)

    def poly(pts, fill, outline):
        # A filled polygon plus a closed line is about twice as fast as Pillow's polygon(width=...).
        d.polygon(pts, fill=fill)
        d.line(list(pts) + [pts[0]], fill=outline, width=lw, joint="curve")

    def ellipse(cx, cy, rx, ry, fill, outline=None, width=0):
        d.ellipse([P(cx - rx, cy - ry), P(cx + rx, cy + ry)], fill=fill, outline=outline, width=width)

    s = a["head_scale"]
    cx, cy = 0.5 + a["offset_x"], 0.47 + a["offset_y"]
    hw = a["face_width"] / 2 * s
    hh = hw * {"round": 1.02, "oval": 1.2, "pointed": 1.12}[shape]
    yaw = a["yaw"]
    fx = cx + yaw * 0.045 * s  # features slide toward the side the head turns to
    hair_dark = _shade(hair, 0.55)
    hair_light = _mix(hair, (255, 255, 255), 0.45)

    # Hair behind the head.
    top = cy - hh * 1.26
    if style == "long":
        d.rounded_rectangle([P(cx - hw * 1.36, top), P(cx + hw * 1.36, min(0.99, cy + hh * 2.1))],
                            radius=hw * 1.3 * S, fill=hair, outline=hair_dark)
    elif style == "bob":
        ellipse(cx, cy - hh * 0.22, hw * 1.4, hh * 1.06, hair, hair_dark, lw)
    elif style == "twintails":
        for side in (-1, 1):
            tx = cx + side * hw * 1.5
            ellipse(tx, cy + hh * 0.65, hw * 0.42, hh * 1.05, hair, hair_dark, lw)
            ellipse(cx + side * hw * 1.12, cy - hh * 0.55, hw * 0.16, hw * 0.16, _hsv(a["shirt_hue"] + 0.5, 0.7, 0.9),
                    ink, lw)
        ellipse(cx, cy - hh * 0.3, hw * 1.2, hh * 1.0, hair, hair_dark, lw)
    elif style == "spiky":
        pts = []
        n = 11
        for k in range(n * 2 + 1):
            t = math.pi + math.pi * k / (n * 2)
            r = 1.5 if k % 2 else 1.12
            pts.append(P(cx + hw * r * 1.05 * math.cos(t - 0.15 * math.sin(t)), cy - hh * 0.15 + hh * r * math.sin(t)))
        poly(pts, hair, hair_dark)
    else:
        ellipse(cx, cy - hh * 0.38, hw * 1.2, hh * 0.92, hair, hair_dark, lw)

    # Shoulders and neck, in front of long hair.
    shirt = _hsv(a["shirt_hue"], 0.55, 0.78)
    ellipse(cx, cy + hh + 0.3 * s, 0.4 * s, 0.2 * s, shirt, ink, lw)
    neck = _shade(skin, 0.86)
    d.rectangle([P(cx - hw * 0.32, cy + hh * 0.5), P(cx + hw * 0.32, cy + hh + 0.19 * s)], fill=neck)

    # Face: an ellipse whose lower half narrows towards the chin by the shape's pointiness.
    point = {"round": 0.0, "oval": 0.18, "pointed": 0.42}[shape]
    face = []
    for k in range(72):
        t = 2 * math.pi * k / 72
        down = max(math.sin(t), 0.0)
        x = cx + hw * math.cos(t) * (1 - point * down ** 2)
        y = cy + hh * math.sin(t) * (1 + 0.06 * point * down)
        face.append(P(x + (yaw * 0.02 * s) * down ** 3, y))
    poly(face, skin, ink)

    # Blush, then the eyes.
    blush = _mix(skin, (255, 96, 128), 0.65 * a["blush"])
    ey = cy + hh * 0.14
    es = a["eye_size"]
    for side in (-1, 1):
        ellipse(fx + side * hw * 0.6, cy + hh * 0.47, hw * 0.21, hw * 0.1, blush)
    for side in (-1, 1):
        squeeze = 1 - 0.22 * yaw * side  # the far eye looks narrower
        ex = fx + side * hw * 0.45
        rx, ry = hw * 0.23 * es * squeeze, hw * 0.3 * es
        ellipse(ex, ey, rx, ry, (255, 255, 255))
        ellipse(ex, ey + ry * 0.12, rx * 0.8, ry * 0.86, iris)
        ellipse(ex, ey + ry * 0.4, rx * 0.6, ry * 0.45, _mix(iris, (255, 255, 255), 0.35))
        ellipse(ex, ey + ry * 0.1, rx * 0.38, ry * 0.44, _shade(iris, 0.28))
        ellipse(ex - rx * 0.3, ey - ry * 0.25, rx * 0.26, rx * 0.26, (255, 255, 255))
        ellipse(ex + rx * 0.3, ey + ry * 0.42, rx * 0.12, rx * 0.12, (255, 255, 255))
        lash = [P(ex + rx * 1.1 * math.cos(t), ey - ry * 0.15 + ry * 0.95 * math.sin(t))
                for t in np.linspace(math.pi * 1.08, math.pi * 1.92, 9)]
        d.line(lash, fill=ink, width=int(lw * 2.2), joint="curve")
        outer = lash[-1] if side > 0 else lash[0]
        d.line([outer, (outer[0] + side * rx * 0.35 * S, outer[1] - ry * 0.25 * S)], fill=ink, width=lw * 2)
        # Brows tilt with the mood: worried when frowning.
        by = ey - ry * 1.45 - hh * 0.05
        tilt = -a["smile"] * hw * 0.12
        d.line([P(ex - rx * 0.9, by + side * tilt * 0.5),
                P(ex + rx * 0.9, by - side * tilt * 0.5)], fill=_shade(hair, 0.5), width=int(lw * 1.6))

    # Nose and mouth: the mouth bends from a frown (smile < 0) to an open smile (smile > 0.45).
    d.line([P(fx + yaw * 0.01, cy + hh * 0.4), P(fx + yaw * 0.01 - 0.006 * s, cy + hh * 0.46)],
           fill=_shade(skin, 0.72), width=lw)
    my, smile = cy + hh * 0.7, a["smile"]
    mw = hw * (0.26 + 0.16 * abs(smile))
    mh = hw * 0.2
    xs = np.linspace(-1, 1, 13)
    curve = [P(fx + mw * x, my + smile * mh * (1 - x * x) - smile * mh * 0.4) for x in xs]
    if smile > 0.45:
        opening = (smile - 0.45) / 0.55
        upper = [P(fx + mw * x, my - smile * mh * 0.4 + smile * mh * 0.15 * (1 - x * x)) for x in xs]
        lower = [P(fx + mw * x, my - smile * mh * 0.4 + smile * mh * (1.0 + 0.9 * opening) * (1 - x * x))
                 for x in xs[::-1]]
        poly(upper + lower, (150, 36, 52), ink)
        tongue_y = my - smile * mh * 0.4 + smile * mh * (0.85 + 0.6 * opening)
        ellipse(fx, tongue_y, mw * 0.42, mh * 0.35 * (0.5 + opening), (240, 110, 120))
    else:
        d.line(curve, fill=ink, width=int(lw * 1.3), joint="curve")

    # Bangs over the forehead: a cap over the head with a jagged lower edge, then side locks.
    band = ey - hw * 0.3 * es * 1.9 - hh * 0.05
    cap = [P(cx + hw * 1.13 * math.cos(t), cy - hh * 0.12 + hh * 1.1 * math.sin(t))
           for t in np.linspace(math.pi * 1.0, math.pi * 2.0, 19)]
    detail = rng.random(24)
    n = 4 + int(detail[0] * 4) + (3 if style == "spiky" else 0)
    edge = []
    for k in range(n + 1):
        x = cx + hw * 1.1 - 2.2 * hw * k / n
        edge.append(P(x, band + 0.35 * detail[1 + k] * hw * (1.3 if style == "spiky" else 1.0)))
        if k < n:
            edge.append(P(x - 1.1 * hw / n, band - hw * (0.18 + 0.14 * detail[12 + k])))
    poly(cap + edge, hair, hair_dark)
    if style in ("long", "bob", "twintails"):
        reach = {"long": 0.95, "bob": 0.75, "twintails": 0.45}[style]
        for side in (-1, 1):
            x0 = cx + side * hw * 1.13
            poly([P(x0, cy - hh * 0.2), P(x0 - side * hw * 0.34, cy - hh * 0.05),
                  P(x0 - side * hw * 0.12, cy + hh * reach)], hair, hair_dark)
    # The anime "angel ring" highlight.
    d.arc([P(cx - hw * 0.8, cy - hh * 1.12), P(cx + hw * 0.8, cy - hh * 0.2)], 205, 335, fill=hair_light,
          width=int(lw * 1.8))
    return img


def render(seed, index, resolution):
    """Face `index` of `seed` as uint8 HWC at `resolution`, and its attribute vector."""
    attrs, rng = sample_attributes(seed, index)
    factor = max(1, min(4, 1024 // resolution))
    img = draw_face(attrs, rng, resolution * factor)
    if factor > 1:
        img = img.reduce(factor)  # box filter: clean antialiased edges
    return np.asarray(img, dtype=np.uint8), attrs


def _render_task(args):
    seed, index, resolution = args
    image, attrs = render(seed, index, resolution)
    return build_pyramid(image.transpose(2, 0, 1)), attrs.astype(np.float32)


@interrupts.stop_on_signals()
def create_demo(out_dir, count=10000, resolution=64, seed=0, label_attribute=None, overwrite=False,
                workers=None, progress=True):
    """Write the demo dataset of `count` procedural faces at `resolution` to `out_dir` (atomically).

    `label_attribute` (a categorical attribute, e.g. "hair_color") is also stored as one-hot `.labels`.
    Returns the opened DatasetInfo.
    """
    from stylegan_tf.data.reader import open_dataset
    from stylegan_tf.data.tfrecords import (DatasetError, DatasetWriter, check_output, dataset_bytes,
                                            explain_disk_full, output_dir, write_metadata)
    from stylegan_tf.data.workers import imap

    count, resolution = int(count), int(resolution)
    if count < 1:
        raise DatasetError(f"--count must be >= 1, got {count}")
    if resolution < 8 or resolution > 1024 or resolution & (resolution - 1):
        raise DatasetError(f"--resolution must be a power of two in 8..1024, got {resolution}")
    if label_attribute is not None and label_attribute not in CATEGORICAL:
        raise DatasetError(f"--label-attribute {label_attribute!r} is not one of {', '.join(CATEGORICAL)}")
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_output(out_dir, overwrite)
    name = os.path.basename(out_dir)
    start = time.time()
    attrs = np.zeros([count, len(ATTRIBUTES)], np.float32)
    with explain_disk_full(out_dir, dataset_bytes(count, resolution, 3)), \
            interrupts.guarded(output_dir(out_dir, overwrite)) as tmp:
        with DatasetWriter(tmp, name, resolution, 3) as writer:
            tasks = [(seed, i, resolution) for i in range(count)]
            results = imap(_render_task, tasks, workers, chunksize=64)
            if progress:
                from tqdm import tqdm
                results = tqdm(results, total=count, desc="demo faces", unit="img", dynamic_ncols=True)
            for i, (pyramid, a) in enumerate(results):
                writer.add(pyramid)
                attrs[i] = a
            label_names = None
            if label_attribute is not None:
                label_names = CATEGORICAL[label_attribute]
                col = attrs[:, ATTRIBUTE_NAMES.index(label_attribute)].astype(np.int64)
                writer.write_labels(np.eye(len(label_names), dtype=np.float32)[col])
        np.save(os.path.join(tmp, f"{name}-attributes.npy"), attrs)
        write_metadata(tmp, "stylegan_tf create_demo", {
            "name": name, "count": count, "resolution": resolution, "channels": 3,
            "levels": [resolution >> k for k in range(int(np.log2(resolution)) - 1)],
            "label_size": 0 if label_names is None else len(label_names), "label_names": label_names,
            "label_attribute": label_attribute, "source": "procedural demo faces",
            "options": {"seed": int(seed), "count": count, "resolution": resolution},
            "skipped": 0, "attributes": ATTRIBUTES, "attributes_file": f"{name}-attributes.npy",
            "seconds": round(time.time() - start, 2),
        })
    return open_dataset(out_dir)
