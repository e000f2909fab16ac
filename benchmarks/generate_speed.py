"""How fast generate.py turns seeds into PNGs, against the bare generator call.

  python benchmarks/generate_speed.py                       # random net, 64x64, small channels (CPU-friendly)
  python benchmarks/generate_speed.py --network net.keras --count 64 --batch 16

Prints images/second for: Gs.run alone; `images` end to end (z, run, uint8, PNG write); random noise
(reproducible, one image at a time); and the first call (tracing).
"""
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", default=None)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--fmap-base", type=int, default=512)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()

    from stylegan_tf.generate import commands
    from stylegan_tf.generate.sampling import load_generator, run_z
    from stylegan_tf.generate.seeds import seeds_to_z

    if args.network:
        Gs = load_generator(args.network)
    else:
        from stylegan_tf.networks import Generator
        Gs = Generator(resolution=args.resolution, fmap_base=args.fmap_base, fmap_max=128, latent_size=128,
                       dlatent_size=128, mapping_fmaps=128)
    print(f"network: {args.network or 'random'}  {Gs.resolution}x{Gs.resolution}  batch {args.batch}  "
          f"count {args.count}")

    z = seeds_to_z(range(args.count), Gs.latent_size)
    t = time.perf_counter()
    Gs.run(z[:args.batch], noise_mode="const")
    print(f"first call (trace + run) : {time.perf_counter() - t:8.2f} s")
    # Warm the other traces used below (truncated run, synthesis of one image) so only steady state is timed.
    Gs.run(z[:args.batch], truncation_psi=0.7, truncation_cutoff=8, noise_mode="const")
    run_z(Gs, z[:2], noise_mode="random", batch_size=args.batch, progress=False, noise_rng=np.random.RandomState(1))

    t = time.perf_counter()
    for i in range(0, args.count, args.batch):
        Gs.run(z[i:i + args.batch], noise_mode="const")
    dt = time.perf_counter() - t
    print(f"Gs.run                   : {args.count / dt:8.1f} img/s")

    class Nets:
        pass
    nets = Nets()
    nets.Gs = Gs
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        commands.images(nets, list(range(args.count)), outdir=os.path.join(tmp, "a"), truncation_psi=0.7,
                        batch_size=args.batch, progress=False)
        dt = time.perf_counter() - t
        print(f"images (end to end)      : {args.count / dt:8.1f} img/s")
        n = max(args.count // 4, 1)
        t = time.perf_counter()
        run_z(Gs, z[:n], noise_mode="random", batch_size=args.batch, progress=False,
              noise_rng=np.random.RandomState(0))
        dt = time.perf_counter() - t
        print(f"random noise, seeded     : {n / dt:8.1f} img/s")


if __name__ == "__main__":
    main()
