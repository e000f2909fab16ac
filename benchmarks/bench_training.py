#!/usr/bin/env python
"""Training speed through `fit`: img/s and sec/kimg at 32, 64, 128 (fp32, and bf16 where the CPU has AMX).

    python benchmarks/bench_training.py                      # 32 64 128, the stated small config
    python benchmarks/bench_training.py --res 32 --steps 20 --demo   # also time `python train.py` (the demo)

Config (stated with the numbers): G/D fmap_base 1024, fmap_max 128, z/w 128, 4 mapping layers of 128, minibatch
16, logistic loss + R1, style mixing, noise, mirror; one phase at full resolution (level 0). Wall time and process
CPU time are both printed: on a shared machine CPU seconds / cores is the better estimate of an idle machine.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NETS = {
    "small": dict(fmap_base=1024, fmap_max=128, latent_size=128, dlatent_size=128, mapping_layers=4,
                  mapping_fmaps=128),
}
NET = NETS["small"]


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def has_amx():
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def bench(res, steps, minibatch, data_dir, precision, jit=False):
    import keras
    import tensorflow as tf

    from stylegan_tf.data import open_dataset
    from stylegan_tf.networks import Discriminator, Generator
    from stylegan_tf.training import StyleGAN

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    info = open_dataset(data_dir)
    keras.utils.set_random_seed(0)
    G = Generator(resolution=res, num_channels=3, **NET)
    D = Discriminator(resolution=res, num_channels=3, fmap_base=NET["fmap_base"], fmap_max=NET["fmap_max"])
    model = StyleGAN(G, D, Generator(resolution=res, num_channels=3, **NET), mirror=True)
    model.ema_update_now(0.0)
    adam = lambda: keras.optimizers.Adam(0.001, beta_1=0.0, beta_2=0.99, epsilon=1e-8)  # noqa: E731
    model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs={"gamma": 10.0},
                  jit_compile=jit)
    model.configure_phase(level=0, global_batch=minibatch)
    ds = info.make_tf_dataset(res, batch_size=minibatch, seed=0)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.range(1 << 40))).map(
        lambda b, s: (b[0], b[1], tf.fill([minibatch], s)))

    marks = {}

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:       # the first step includes tracing; time from the end of the second
                marks["t0"], marks["c0"] = time.time(), cpu_seconds()

    t_start = time.time()
    model.fit(ds, epochs=1, steps_per_epoch=steps + 2, verbose=0, shuffle=False, callbacks=[Clock()])
    wall, cpu = time.time() - marks["t0"], cpu_seconds() - marks["c0"]
    first = marks["t0"] - t_start
    n = steps * minibatch
    keras.mixed_precision.set_global_policy("float32")
    return dict(res=res, precision=precision, minibatch=minibatch, steps=steps, trace_s=first,
                img_s=n / wall, sec_kimg=wall * 1000 / n, cpu_sec_kimg=cpu * 1000 / n)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--res", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--minibatch", type=int, default=16)
    p.add_argument("--net", choices=["small", "demo"], default="small",
                   help="network size: the stated small config, or the demo's (options.DEMO_OPTIONS)")
    p.add_argument("--xla", action="store_true", help="jit_compile the train step with XLA")
    p.add_argument("--demo", action="store_true", help="also time `python train.py` (the demo, ~10 min)")
    args = p.parse_args()
    if args.net == "demo":
        from stylegan_tf.training.options import DEMO_OPTIONS
        NET.clear()
        NET.update({k: DEMO_OPTIONS[k] for k in ("fmap_base", "fmap_max", "latent_size", "dlatent_size",
                                                "mapping_layers", "mapping_fmaps")})

    from stylegan_tf.data import create_demo, open_dataset

    tmp = tempfile.mkdtemp(prefix="bench_training_")
    precisions = ["fp32"] + (["bf16"] if has_amx() else [])
    if not has_amx():
        print("bf16: skipped (this CPU has no AMX: bf16 would be emulated and slower than fp32)")
    print(f"config: {NET}, minibatch {args.minibatch}, logistic + R1, mixing, noise, mirror; cores {os.cpu_count()}")
    print(f"{'res':>4} {'prec':>5} {'mb':>3} {'trace+1st s':>11} {'img/s':>7} {'sec/kimg':>9} {'cpu s/kimg':>10}")
    for res in args.res:
        data = os.path.join(tmp, f"faces{res}")
        create_demo(data, count=max(64, args.minibatch * 4), resolution=max(res, 8), progress=False)
        open_dataset(data)
        for prec in precisions:
            r = bench(res, args.steps, args.minibatch, data, prec, jit=args.xla)
            prec = r["precision"] + ("+xla" if args.xla else "")
            print(f"{r['res']:>4} {prec:>5} {r['minibatch']:>3} {r['trace_s']:>11.1f} {r['img_s']:>7.1f} "
                  f"{r['sec_kimg']:>9.1f} {r['cpu_sec_kimg']:>10.1f}", flush=True)
    if args.demo:
        out = os.path.join(tmp, "results")
        t0, c0 = time.time(), os.times()
        subprocess.run([sys.executable, "train.py", "--outdir", out, "--no-progress"], check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        c1 = os.times()
        cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
        print(f"demo (python train.py, dataset cached): wall {time.time() - t0:.0f} s, CPU {cpu:.0f} s")


if __name__ == "__main__":
    main()
