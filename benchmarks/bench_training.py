#!/usr/bin/env python
"""Training speed against NVIDIA's official StyleGAN loop, same machine, same run: our sec/kimg, theirs, the ratio.

    python benchmarks/bench_training.py                                   # ours only (says why)
    python benchmarks/bench_training.py --anchor-python /work/anchor/anchor-venv/bin/python \\
        --anchor-script /work/anchor/official_train_anchor.py --official-code /work/anchor/stylegan-official
    python benchmarks/bench_training.py ... --levers="--mixed-precision" --levers="--r1-interval 16"  # + lever rows
    python benchmarks/bench_training.py --configs demo --ada-overhead    # + ADA at p = 0 and 0.5, ratios to none

The anchor paths may also come from STYLEGAN_ANCHOR_PYTHON, STYLEGAN_ANCHOR_SCRIPT and STYLEGAN_OFFICIAL_CODE
(the anchor is a driver that runs the official TF1 code unmodified under tf.compat.v1; see its header). Without
them only our figures are printed.

Both sides are timed the same way: the whole training loop (data pipeline, D step with R1, G step, Gs EMA) for
a few ticks, the first tick (graph building / tracing) dropped, sec/kimg the median of the tick lines each loop
prints itself; rounds alternate official / ours and the medians over rounds are reported. Configurations:
  demo       train.py's demo (DEMO_OPTIONS: 32^2, fmap_base 256 / fmap_max 64, z/w 64, 4 mapping layers of 64,
             minibatch 16, R1 gamma 50, mirror, no growing), ticks of 1.024 kimg
  default64  64^2, the default widths (fmap_base 8192 / fmap_max 512, z/w 512, 8 mapping layers of 512), the
             official 1-GPU minibatch at 64^2 (32), lr 0.001, R1 gamma 10, mirror, no growing
Our rows run `train.py` (fp32, R1 every step: the official iteration; its CPU thread layout is train.py's
`--cpu-parallelism auto`), plus a row for each `--levers` given. `--ada-overhead` adds the rows of ADA's default
pipe (bgc) at p = 0 and p = 0.5 (`--augment fixed --aug-p P`: ADA's adjusted p held still at that strength, so the
cost is that of p throughout; p = 0 is where `--augment ada` starts) and prints their s/kimg over `--augment
none`'s.
On a shared machine run it under a lock, and idle: absolute seconds swing with load, ratios less so.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from stylegan_tf import cli  # noqa: E402 (needs ROOT on the path)

cli.quiet_tensorflow()  # the options import loads TensorFlow: keep its banner out of --help and the table
from stylegan_tf.training.options import DEMO_OPTIONS as _DEMO  # noqa: E402

CONFIGS = {
    # train.py's demo read from its one definition, so the benchmark cannot drift from it; short ticks.
    "demo": dict(res=_DEMO["resolution"], fmap_base=_DEMO["fmap_base"], fmap_max=_DEMO["fmap_max"],
                 latent=_DEMO["latent_size"], mapping_layers=_DEMO["mapping_layers"],
                 mapping_fmaps=_DEMO["mapping_fmaps"], minibatch=_DEMO["minibatch"], lrate=_DEMO["lrate"],
                 gamma=_DEMO["gamma"], g_smoothing_kimg=_DEMO["g_smoothing_kimg"], tick_kimg=1.024),
    "default64": dict(res=64, fmap_base=8192, fmap_max=512, latent=512, mapping_layers=8, mapping_fmaps=512,
                      minibatch=32, lrate=0.001, gamma=10.0, g_smoothing_kimg=10.0, tick_kimg=0.128),
}
ADA_LEVERS = {"--augment fixed --aug-p 0": "p = 0", "--augment fixed --aug-p 0.5": "p = 0.5"}
TICK_RE = re.compile(r"^tick\s+(\d+)\s+kimg\s+[\d.]+.*?sec/kimg\s+([\d.]+)", re.M)

# Runs the anchor's `train` with the configuration's values: its cmd_train builds the official run's arguments and
# calls dnnlib.submit_run, which this wraps to change the sizes, schedule, loss weight and snapshot cadence.
OFFICIAL_DRIVER = textwrap.dedent("""
    import json, os, sys
    cfg = json.loads(sys.argv[1])
    sys.path.insert(0, os.path.dirname(cfg["script"]))
    import official_train_anchor as A
    A.RES = cfg["res"]
    A.DEMO_NET.update(fmap_base=cfg["fmap_base"], fmap_max=cfg["fmap_max"])
    A.DEMO_G.update(latent_size=cfg["latent"], dlatent_size=cfg["latent"], mapping_layers=cfg["mapping_layers"],
                    mapping_fmaps=cfg["mapping_fmaps"])
    shims = A.install_tf1_shims

    def install(snapshot):
        tf1 = shims(snapshot)
        import dnnlib
        submit = dnnlib.submit_run

        def run(**kw):
            kw["D_loss_args"]["r1_gamma"] = cfg["gamma"]
            s = kw["sched_args"]
            s.update(lod_initial_resolution=cfg["res"], minibatch_base=cfg["minibatch"], minibatch_dict={},
                     G_lrate_base=cfg["lrate"], D_lrate_base=cfg["lrate"], tick_kimg_base=cfg["tick_kimg"])
            kw.update(G_smoothing_kimg=cfg["g_smoothing_kimg"], image_snapshot_ticks=10 ** 6,
                      network_snapshot_ticks=10 ** 6)
            return submit(**kw)
        dnnlib.submit_run = run
        return tf1
    A.install_tf1_shims = install
    A.cmd_train(["snapshot=" + cfg["code"], "out=" + cfg["out"], "total_kimg=%r" % cfg["total_kimg"]])
""")


def steady(log, first=2):
    """Median sec/kimg of the tick lines numbered >= `first` (tick 1 holds graph building / tracing)."""
    ticks = [(int(t), float(s)) for t, s in TICK_RE.findall(log)]
    vals = [s for t, s in ticks if t >= first]
    if not vals:
        raise RuntimeError("no steady tick lines in the output:\n" + log[-3000:])
    return statistics.median(vals)


def run_official(cfg, args, out):
    import json
    total = cfg["tick_kimg"] * (args.ticks + 1)
    spec = dict(cfg, script=args.anchor_script, code=args.official_code, out=out, total_kimg=total)
    env = dict(os.environ, ANCHOR_DATASET=args.data, TF_CPP_MIN_LOG_LEVEL="2")
    p = subprocess.run([args.anchor_python, "-c", OFFICIAL_DRIVER, json.dumps(spec)], env=env,
                       capture_output=True, text=True, timeout=args.timeout)
    if p.returncode:
        raise RuntimeError(f"the official run failed ({p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
    return steady(p.stdout)


def run_ours(cfg, args, out, extra=()):
    total = cfg["tick_kimg"] * (args.ticks + 1)
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--data", args.data, "--outdir", out,
           "--resolution", str(cfg["res"]), "--lod-initial-resolution", str(cfg["res"]),
           "--fmap-base", str(cfg["fmap_base"]), "--fmap-max", str(cfg["fmap_max"]),
           "--latent-size", str(cfg["latent"]), "--dlatent-size", str(cfg["latent"]),
           "--mapping-layers", str(cfg["mapping_layers"]), "--mapping-fmaps", str(cfg["mapping_fmaps"]),
           "--minibatch", str(cfg["minibatch"]), "--lrate", str(cfg["lrate"]), "--gamma", str(cfg["gamma"]),
           "--g-smoothing-kimg", str(cfg["g_smoothing_kimg"]), "--mirror", "--tick-kimg", str(cfg["tick_kimg"]),
           "--total-kimg", f"{total:g}", "--snap-ticks", "1000000", "--image-snap-ticks", "1000000",
           "--no-progress", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if p.returncode:
        raise RuntimeError(f"our run failed ({p.returncode}): {' '.join(cmd)}\n{(p.stdout + p.stderr)[-3000:]}")
    return steady(p.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="demo,default64", help="comma-separated: " + ", ".join(CONFIGS))
    p.add_argument("--rounds", type=int, default=2, help="official/ours alternations per configuration")
    p.add_argument("--ticks", type=int, default=4, help="steady ticks timed per run (after the first)")
    p.add_argument("--levers", action="append", default=[], help="extra train.py flags for an additional "
                   "'ours' row, as --levers=\"--r1-interval 4 --mixed-precision\" (with '=', or argparse reads "
                   "them as its own flags); repeat for more rows")
    p.add_argument("--ada-overhead", action="store_true", help="add the rows of ADA's bgc pipe at p = 0 and "
                   "p = 0.5 and their ratios to ours without augmentation")
    p.add_argument("--data", default=None, help="dataset with 32^2 and 64^2 levels (default: the demo dataset, "
                   "built on first use)")
    p.add_argument("--anchor-python", default=os.environ.get("STYLEGAN_ANCHOR_PYTHON"))
    p.add_argument("--anchor-script", default=os.environ.get("STYLEGAN_ANCHOR_SCRIPT"))
    p.add_argument("--official-code", default=os.environ.get("STYLEGAN_OFFICIAL_CODE"))
    p.add_argument("--minibatch", type=int, default=None, help="override every configuration's minibatch (the "
                   "official default64 run at 32 needs > 12 GB of memory)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per training run")
    args = p.parse_args()
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in names if c not in CONFIGS]
    if bad:
        p.error(f"--configs {','.join(bad)}: choose from {', '.join(CONFIGS)}")
    if args.data is None:
        from stylegan_tf.training.prepare import demo_dataset_dir, ensure_demo_dataset
        ensure_demo_dataset(progress=False)
        args.data = demo_dataset_dir()
    if args.ada_overhead:
        args.levers += list(ADA_LEVERS)
    official = all((args.anchor_python, args.anchor_script, args.official_code))
    if not official:
        print("official: not measured (give --anchor-python, --anchor-script and --official-code, or the "
              "STYLEGAN_ANCHOR_* / STYLEGAN_OFFICIAL_CODE variables)")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start")
    tmp = tempfile.mkdtemp(prefix="bench_training_")
    rows = []
    for name in names:
        cfg = dict(CONFIGS[name], **({"minibatch": args.minibatch} if args.minibatch else {}))
        got = {"official": [], "ours": [], **{lever: [] for lever in args.levers}}
        for r in range(args.rounds):
            if official:
                got["official"].append(run_official(cfg, args, os.path.join(tmp, f"off-{name}-{r}")))
            got["ours"].append(run_ours(cfg, args, os.path.join(tmp, f"ours-{name}-{r}")))
            for i, lever in enumerate(args.levers):
                got[lever].append(run_ours(cfg, args, os.path.join(tmp, f"lev{i}-{name}-{r}"), lever.split()))
            print(f"  {name} round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in got.items() if v) +
                  f" s/kimg (load {os.getloadavg()[0]:.2f})", flush=True)
        off = statistics.median(got["official"]) if got["official"] else None
        for kind in ("ours", *args.levers):
            ours = statistics.median(got[kind])
            rows.append((f"{name}/mb{cfg['minibatch']}", kind if kind == "ours" else f"ours {kind}", ours, off))
    print(f"\n{'config':<14} {'run':<40} {'ours s/kimg':>11} {'official':>9} {'official/ours':>13}")
    for name, kind, ours, off in rows:
        ratio = f"{off / ours:.2f}x" if off else "-"
        print(f"{name:<14} {kind:<40} {ours:>11.2f} {off if off else float('nan'):>9.2f} {ratio:>13}")
    for name, kind, ours, _ in rows:
        strength = ADA_LEVERS.get(kind[len("ours "):]) if args.ada_overhead else None
        if strength:
            none = next(o for n, k, o, _ in rows if n == name and k == "ours")
            print(f"{name}: ADA (bgc, {strength}) {ours:.2f} s/kimg, none {none:.2f}: {ours / none:.2f}x")
    print(f"load at end {os.getloadavg()[0]:.2f}; run at {time.strftime('%Y-%m-%d %H:%M:%S')}")


if __name__ == "__main__":
    main()
