#!/usr/bin/env python
"""The mapping-variant comparison of "Art Creation" (FC mappings vs per-level v1..v4), on our pipeline.

    python benchmarks/compare_mapping.py --data ~/.cache/stylegan_tf/demo-faces-64 --kimg 2 --loss wgan-gp
    python benchmarks/compare_mapping.py --readings        # only the parameter-count readings of v3/v4

Trains every mapping of Art Creation's table (FC(512)x8, FC(256)x8, FC(256)x4, v1, v2, v3(128)x5, v4(128)x5,
v4(128)x6) with the same synthesis and discriminator, seed, data and kimg, and prints Art Creation's table
(mapping weight-matrix parameters, final G and D loss) plus what it lacked: the full parameter count, SWD of
Gs' fakes against the reals with the reals-vs-reals floor, and training img/s. The FC(W) rows take a W-wide z
(that is what their weight counts imply); v1..v4 take z of 512 (the reading that reproduces the v3/v4 counts,
docs/mapping_variants.md). Config, stated with the numbers: one phase at full resolution (no growing), the
demo's R1 gamma 50 for the logistic loss, minibatch 16, lr 0.002, mirror, Gs half-life kimg/8, synthesis
--fmap-base/--fmap-max as given. "Final" losses are the means over the last quarter of training.
"""
import argparse
import itertools
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (label, mapping, z width, levels/layers, width W); Art Creation's weight-only counts where it gave them.
ROWS = [("FC(512)x8", "fc", 512, 8, 512, 2_097_152), ("FC(256)x8", "fc", 256, 8, 256, 524_288),
        ("FC(256)x4", "fc", 256, 4, 256, 262_144), ("v1(128)x5", "v1", 512, 5, 128, None),
        ("v2(128)x5", "v2", 512, 5, 128, None), ("v3(128)x5", "v3", 512, 5, 128, 655_360),
        ("v4(128)x5", "v4", 512, 5, 128, 409_600), ("v4(128)x6", "v4", 512, 6, 128, 491_520)]


# ------------------------------------------------------------------ readings of the v3/v4 description
def reading_count(kind, N, Z, W, links, extra, start):
    """Weight-matrix parameters of one reading of v3/v4 with N levels, z width Z, width W.

    links: what level i concatenates: "chain" (s_{i-1}; z at level 1), "dense" (s_1..s_{i-1}; z at level 1),
        "z+dense" (z, s_1..s_{i-1}), "z+prev" (z, s_{i-1}).
    extra: where the extra dense layer sits: "per-link" (W->W on every incoming style, before the concatenation),
        "per-style" (W->W once on each style, before it is concatenated anywhere), "after->W" (concat->W right
        after the concatenation, then the level's W->W layer), "after-same" (concat->concat, then the level's
        concat->W layer), "none".
    start: True if level 1 also has a W-wide previous input (a learned start vector, no weight matrix).
    """
    total = 0
    for i in range(1, N + 1):
        if links == "chain":
            ins = ["s"] if i > 1 else ["z"]
        elif links == "dense":
            ins = ["s"] * (i - 1) or ["z"]
        elif links == "z+dense":
            ins = ["z"] + ["s"] * (i - 1)
        else:
            ins = ["z"] + (["s"] if i > 1 or start else [])
        if start and links != "z+prev" and i == 1:
            ins = ins + ["s"]
        widths = [Z if x == "z" else W for x in ins]
        if extra == "per-link":
            total += sum(W * W for x in ins if x == "s")
        cw = sum(widths)
        if extra == "after->W":
            total += cw * W + W * W
        elif extra == "after-same":
            total += cw * cw + cw * W
        else:
            total += cw * W
        if extra == "per-style" and i < N:
            total += W * W
    return total


def readings():
    """Every reading (z width, links, extra-dense placement, start vector) and which Art Creation numbers it gives."""
    targets = {("v3", 5): 655_360, ("v4", 5): 409_600, ("v4", 6): 491_520}
    rows = []
    for Z, links, extra, start in itertools.product((128, 256, 512), ("chain", "dense", "z+dense", "z+prev"),
                                                    ("per-link", "per-style", "after->W", "after-same", "none"),
                                                    (False, True)):
        counts = {key: reading_count(key[0], key[1], Z, 128, links, extra, start) for key in targets}
        hits = [f"{k[0]}x{k[1]}" for k, v in counts.items() if v == targets[k]]
        rows.append(dict(z=Z, links=links, extra=extra, start=start, x5=counts[("v3", 5)],
                         x6=counts[("v4", 6)], hits=hits))
    return rows


def print_readings():
    rows = readings()
    print(f"{len(rows)} readings of v3/v4 (W = 128); Art Creation: x5 -> 655,360 (v3) or 409,600 (v4), "
          "x6 -> 491,520 (v4)")
    print(f"{'z':>4} {'links':<8} {'extra dense':<11} {'start':<5} {'x5':>10} {'x6':>10}  Art Creation numbers hit")
    for r in rows:
        if r["hits"]:
            print(f"{r['z']:>4} {r['links']:<8} {r['extra']:<11} {str(r['start']):<5} {r['x5']:>10,} {r['x6']:>10,}  "
                  + ", ".join(r["hits"]))
    both = [r for r in rows if {"v4x5", "v4x6"} <= set(r["hits"])]
    print(f"readings giving both v4 numbers: {len(both)}; giving v3x5: {sum('v3x5' in r['hits'] for r in rows)}")


# ------------------------------------------------------------------ the training comparison
def real_sets(data, resolution, num):
    """Two disjoint sets of `num` reals (uint8): the SWD reference and the reals-vs-reals floor."""
    from stylegan_tf.data import open_dataset
    info = open_dataset(data)
    if info.num_images < 2 * num:
        raise SystemExit(f"--swd-num {num}: the dataset has {info.num_images} images, fewer than 2 x {num}")
    images = []
    for batch in info.iterate_uint8(resolution=resolution, max_images=2 * num):
        images.append(batch)
    import numpy as np
    images = np.concatenate(images)
    return images[:num], images[num:2 * num]


def train_row(row, args, outdir):
    from stylegan_tf.training import TrainingOptions, training_loop
    label, kind, z, layers, width, _ = row
    opts = TrainingOptions(
        data=args.data, outdir=outdir, resolution=args.resolution, lod_initial_resolution=args.resolution,
        total_kimg=args.kimg, tick_kimg=args.kimg / 4, minibatch=16, lrate=0.002, gamma=50.0, mirror=True,
        g_smoothing_kimg=args.kimg / 8, snap_ticks=4, image_snap_ticks=1000, loss=args.loss, seed=args.seed,
        fmap_base=args.fmap_base, fmap_max=args.fmap_max, latent_size=z, dlatent_size=width, mapping=kind,
        mapping_layers=layers, mapping_fmaps=width, progress=False)
    t0 = time.time()
    res = training_loop(opts)
    return res, time.time() - t0


def evaluate(res, reals, seed):
    import numpy as np

    from stylegan_tf.image_grid import to_uint8
    from stylegan_tf.metrics.sliced_wasserstein import swd
    from stylegan_tf.networks.mapping import count_parameters
    Gs = res.model.Gs
    z = np.random.RandomState(seed).randn(len(reals), Gs.latent_size).astype(np.float32)
    fakes = to_uint8(Gs.run(z, truncation_psi=1.0, noise_mode="const"))
    h = res.history.history
    weights, full = count_parameters(Gs.mapping)
    g_total = int(sum(np.prod(v.shape) for v in res.model.G.trainable_weights))
    # img/s of the last tick (the first one also pays for tracing the step).
    return dict(mapping_weights=weights, mapping_full=full, G_params=g_total, G_loss=float(h["G_loss"][-1]),
                D_loss=float(h["D_loss"][-1]), real_score=float(h["real_score"][-1]),
                fake_score=float(h["fake_score"][-1]), swd=swd(reals, fakes, seed=seed)["avg"],
                img_per_sec=float(h["img_per_sec"][-1]), fakes=fakes[:args_grid_count])


args_grid_count = 8


def fakes_figure(results, path):
    """One row of fakes per mapping, its label on the left."""
    import numpy as np
    from PIL import Image, ImageDraw

    from stylegan_tf.image_grid import make_grid, save_image
    label_w = 84
    rows = []
    for label, r in results:
        grid = make_grid(r["fakes"], (1, len(r["fakes"])))
        scale = max(1, 64 // grid.shape[0])
        grid = np.asarray(Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale),
                                                       Image.NEAREST))
        canvas = Image.new("RGB", (label_w + grid.shape[1], grid.shape[0]), (255, 255, 255))
        canvas.paste(Image.fromarray(grid), (label_w, 0))
        ImageDraw.Draw(canvas).text((4, grid.shape[0] // 2 - 6), label, fill=(0, 0, 0))
        rows.append(np.asarray(canvas))
    save_image(np.concatenate(rows, axis=0), path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset folder (dataset_tool.py); e.g. ~/.cache/stylegan_tf/demo-faces-64")
    p.add_argument("--kimg", type=float, default=2.0, help="training length of every mapping (default 2)")
    p.add_argument("--loss", default="logistic", help="logistic (default) or a Wasserstein loss: wgan-gp, wgan")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--fmap-base", type=int, default=256)
    p.add_argument("--fmap-max", type=int, default=32)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--swd-num", type=int, default=512, help="fakes and reals per side for SWD (default 512)")
    p.add_argument("--only", help="comma-separated row labels to run (default: all)")
    p.add_argument("--grid-out", help="write the fakes of every mapping as one PNG here")
    p.add_argument("--json-out", help="write the table as JSON here")
    p.add_argument("--readings", action="store_true", help="print the v3/v4 parameter-count readings and exit")
    args = p.parse_args(argv)
    print_readings()
    if args.readings:
        return 0
    if not args.data:
        p.error("--data is required (or --readings)")
    args.data = os.path.expanduser(args.data)
    rows = [r for r in ROWS if not args.only or r[0] in args.only.split(",")]
    reals, floor_set = real_sets(args.data, args.resolution, args.swd_num)
    from stylegan_tf.metrics.sliced_wasserstein import swd
    floor = swd(reals, floor_set, seed=args.seed)["avg"]
    print(f"\n{args.resolution}x{args.resolution}, {args.kimg:g} kimg each, loss {args.loss}, synthesis fmap_base "
          f"{args.fmap_base} fmap_max {args.fmap_max}, seed {args.seed}; SWD x1e3 on {args.swd_num} images, "
          f"reals-vs-reals floor {floor:.2f}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            res, wall = train_row(row, args, tmp)
            r = evaluate(res, reals, args.seed)
            r["wall_sec"] = wall
            if row[5] is not None and r["mapping_weights"] != row[5]:
                print(f"  note: {row[0]} has {r['mapping_weights']:,} weights, Art Creation's table {row[5]:,}")
            results.append((row[0], r))
            print(f"  {row[0]}: done in {wall:.0f}s", flush=True)
    head = (f"{'mapping':<11} {'weights':>10} {'+biases':>10} {'G params':>9} {'G loss':>8} {'D loss':>8} "
            f"{'W est.':>7} {'SWD':>7} {'img/s':>6}")
    print("\n" + head + "\n" + "-" * len(head))
    for label, r in results:
        print(f"{label:<11} {r['mapping_weights']:>10,} {r['mapping_full']:>10,} {r['G_params']:>9,} "
              f"{r['G_loss']:>8.3f} {r['D_loss']:>8.3f} {r['real_score'] - r['fake_score']:>7.3f} "
              f"{r['swd']:>7.2f} {r['img_per_sec']:>6.1f}")
    print(f"{'reals':<11} {'':>10} {'':>10} {'':>9} {'':>8} {'':>8} {'':>7} {floor:>7.2f}")
    if args.grid_out:
        fakes_figure(results, args.grid_out)
        print(f"fakes: {args.grid_out}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"floor": floor, "args": vars(args), "rows": [
                dict(label=label, **{k: v for k, v in r.items() if k != "fakes"}) for label, r in results]}, f,
                indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
