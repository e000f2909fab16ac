#!/usr/bin/env python
"""Pictures from a trained StyleGAN: images by seed, the paper's figures, videos and latent walks.

  python generate.py images --network net.keras --seeds 0-9 --grid 2x5
  python generate.py style-mixing --network net.pkl --row-seeds 888,829 --col-seeds 639,701 --styles coarse
  python generate.py truncation --network net.keras --seeds 91,388 --psi 1,0.7,0.5,0,-0.5,-1
  python generate.py noise-detail | noise-components | uncurated | interpolate | z-walk | w-walk | convert
  python generate.py timelapse results/00000-... --out timelapse.gif   # a run's fakes grids, kimg stamped
  python generate.py curves results/00000-... --out curves.png         # losses, scores, metrics vs kimg
  python generate.py attributes train | directions | edit | project    # attribute editing (docs/editing.md)

A seed means what it means in NVIDIA's tools: z = np.random.RandomState(seed).randn(z_dim).
Run `python generate.py <command> --help` for each command's options.
"""
import argparse
import sys

from stylegan_tf import cli


def _converters():
    """dest -> parser of the flag's text. Values are converted after argparse (not as its `type=`), so a
    bad value gives our one-line message naming the flag instead of argparse's generic one."""
    from stylegan_tf.generate import seeds as S
    from stylegan_tf.generate.errors import GenerateError

    def one(parse_list, flag, what):
        def parse(text):
            values = parse_list(text, flag)
            if len(values) != 1:
                raise GenerateError(f"{flag}: give one {what} (got '{text}')")
            return values[0]
        return parse

    def cutoff(text):
        if str(text).strip().lower() in ("none", "all"):
            return None
        try:
            value = int(text)
        except ValueError:
            raise GenerateError(f"--trunc-cutoff: '{text}' must be a layer count or 'none'") from None
        if value < 0:
            raise GenerateError("--trunc-cutoff must be >= 0")
        return value

    def crop(text):
        values = S.parse_int_list(text, "--crop")
        if len(values) != 4:
            raise GenerateError("--crop must be X,Y,W,H in pixels, e.g. 0,64,512,384")
        return values

    return {
        "seeds": lambda t: S.parse_seeds(t, "--seeds"),
        "row_seeds": lambda t: S.parse_seeds(t, "--row-seeds"),
        "col_seeds": lambda t: S.parse_seeds(t, "--col-seeds"),
        "seed": one(S.parse_seeds, "--seed", "seed"),
        "grid": S.parse_grid,
        "truncation_psi": one(S.parse_float_list, "--trunc", "number"),
        "truncation_cutoff": cutoff,
        "psis": lambda t: S.parse_float_list(t, "--psi"),
        "flips": lambda t: S.parse_int_list(t, "--flip"),
        "lods": lambda t: S.parse_int_list(t, "--lods"),
        "crop": crop,
        "dims": lambda t: S.parse_int_list(t, "--dims"),
        "values": lambda t: S.parse_linspace(t, "--scale"),
        "components": lambda t: S.parse_int_list(t, "--components"),
    }


def build_parser():
    parser = cli.Parser(prog="generate.py", description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=cli.Parser)

    def command(name, help_text, out=None, progress=True):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--network", required=True, metavar="PATH",
                       help="our .keras snapshot/network or an official .pkl")
        if out is not None:
            p.add_argument("--out", default=out, metavar="FILE", help=f"output file (default {out})")
        p.add_argument("--overwrite", action="store_true", help="replace existing output files")
        if progress:
            p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        return p

    def common(p, cls=True, batch=True, noise=True, trunc=None):
        if cls:
            p.add_argument("--class", dest="class_idx", type=int, default=None, metavar="N",
                           help="class index for a conditional network")
        if batch:
            p.add_argument("--batch", dest="batch_size", type=int, default=8, metavar="N",
                           help="images per batch (default 8)")
        if noise:
            p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"],
                           help="const: the network's stored noise (default); random: fresh (seeded) noise; none")
        if trunc is not None:
            psi, cutoff = trunc
            p.add_argument("--trunc", dest="truncation_psi", default=psi, metavar="PSI",
                           help=f"truncation psi (default {psi}; 1 = none)")
            p.add_argument("--trunc-cutoff", dest="truncation_cutoff", default=cutoff, metavar="N",
                           help=f"truncate only layers below this (default {cutoff or 'none = all layers'})")

    p = command("images", "one PNG per seed, optionally a grid")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--outdir", default="out", metavar="DIR", help="output folder (default out)")
    p.add_argument("--grid", default=None, metavar="RxC", help="also write grid.png with ROWSxCOLS tiles")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="fp32: faithful (default); bf16: synthesis in bfloat16, 2-3x faster on CPUs with AMX, "
                        "pixels differ slightly")
    common(p, trunc=(0.7, 8))

    p = command("style-mixing", "paper Fig. 3: row seeds take the chosen layers from column seeds",
                "out/style-mixing.png")
    p.add_argument("--row-seeds", required=True, metavar="LIST", help="seeds of the rows (left column)")
    p.add_argument("--col-seeds", required=True, metavar="LIST", help="seeds of the columns (top row)")
    p.add_argument("--styles", nargs="+", default=["coarse"], metavar="LAYERS",
                   help="layers copied from the column seed, one spec per row (cycled): coarse|middle|fine|"
                        "0-3|8-; or 'paper' for the paper's 3 coarse, 2 middle, 1 fine rows (default coarse)")
    common(p, trunc=(1.0, None))

    p = command("truncation", "paper Fig. 8: one column per psi", "out/truncation.png")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--psi", dest="psis", default="1,0.7,0.5,0,-0.5,-1", metavar="LIST",
                   help="psi per column (default 1,0.7,0.5,0,-0.5,-1)")
    common(p)

    p = command("noise-detail", "paper Fig. 4: same z, different noise, with the per-pixel std map",
                "out/noise-detail.png")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--samples", type=int, default=100, metavar="N", help="noise draws per seed (default 100)")
    common(p, noise=False)

    p = command("noise-components", "paper Fig. 5: noise in all / none / fine / coarse layers",
                "out/noise-components.png")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--flip", dest="flips", default=[], metavar="LIST",
                   help="positions in --seeds to mirror left-right, e.g. 1")
    common(p, noise=False)

    p = command("uncurated", "paper Fig. 2: mosaic of random images at several sizes", "out/uncurated.png")
    p.add_argument("--seed", required=True, metavar="N")
    p.add_argument("--rows", type=int, default=3, metavar="N", help="rows of full-size images (default 3)")
    p.add_argument("--lods", default=None, metavar="LIST",
                   help="column shrink factors as powers of 2 (default the paper's 0,1,2,2,3,3, "
                        "capped so tiles stay >= 8 px)")
    p.add_argument("--crop", default=None, metavar="X,Y,W,H", help="X,Y,W,H cut from each image first")
    common(p, trunc=(0.7, 8))

    p = command("interpolate", "video through seeds: slerp in Z or lerp in W (GIF, or MP4 with ffmpeg)",
                "out/interpolate.gif")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--space", choices=["z", "w"], default="z")
    p.add_argument("--frames-per-transition", type=int, default=60, metavar="N",
                   help="frames from one seed to the next (default 60)")
    p.add_argument("--loop", action="store_true", help="return to the first seed (seamless loop)")
    p.add_argument("--fps", type=float, default=30, help="frames per second (default 30)")
    p.add_argument("--size", type=int, default=None, metavar="PX", help="resize frames to SIZE x SIZE pixels")
    common(p, trunc=(1.0, None))

    p = command("z-walk", "one row per z dimension, stepping its value", "out/z-walk.png")
    p.add_argument("--seed", required=True, metavar="N")
    p.add_argument("--dims", required=True, metavar="LIST", help="z dimensions, e.g. 0,10,20")
    p.add_argument("--scale", dest="values", default="-3:3:7", metavar="START:STOP:COUNT",
                   help="START:STOP:COUNT values (default -3:3:7)")
    p.add_argument("--mode", choices=["set", "add"], default="set",
                   help="set the dimension to each value (default) or add the value to it")
    common(p, trunc=(1.0, None))

    p = command("w-walk", "one row per principal component of W, in its standard deviations", "out/w-walk.png")
    p.add_argument("--seed", required=True, metavar="N")
    p.add_argument("--components", required=True, metavar="LIST", help="e.g. 0,1,2")
    p.add_argument("--scale", dest="values", default="-3:3:7", metavar="START:STOP:COUNT",
                   help="START:STOP:COUNT in standard deviations (default -3:3:7)")
    p.add_argument("--layers", default="all", help="layers to move: all|coarse|middle|fine|0-3 (default all)")
    p.add_argument("--samples", type=int, default=10000, metavar="N",
                   help="latents sampled for the PCA (default 10000)")
    common(p, trunc=(1.0, None))

    p = command("convert", "official .pkl -> our .keras network file", progress=False)
    p.add_argument("--out", required=True, help="output .keras file")

    # The run-dir commands read a training run folder (any --arch), not a network.
    def run_dir_command(name, help_text, out):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder (results/NNNNN-...)")
        p.add_argument("--out", default=out, metavar="FILE", help=f"output file (default {out})")
        p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
        return p

    from stylegan_tf.generate.timelapse import DEFAULT_FPS, MAX_DEFAULT_WIDTH
    p = run_dir_command("timelapse", "the run's fakes*.png grids in kimg order, kimg stamped on each frame "
                        "(GIF, or MP4 with ffmpeg)", "timelapse.gif")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"frames per second (default {DEFAULT_FPS})")
    p.add_argument("--size", type=int, default=None, metavar="PX",
                   help=f"frame width in pixels, height keeps the aspect ratio (default the grids' own width, "
                        f"at most {MAX_DEFAULT_WIDTH})")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    run_dir_command("curves", "losses, D scores, R1/GP and metric values vs kimg from stats.jsonl and "
                    "metric-*.jsonl (needs matplotlib: pip install -e \".[plot]\")", "curves.png")

    _editing_commands(sub, command)
    return parser


def _editing_commands(sub, command):
    """Attribute editing (stylegan_tf.editing, docs/editing.md): labeler, directions, edit, project."""
    p = sub.add_parser("attributes", help="attribute labeler: `attributes train` (docs/editing.md)",
                       description="a small image classifier/regressor that reads attributes from images")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=cli.Parser)
    t = actions.add_parser("train", help="train the labeler on a dataset's reals and their attributes",
                           description="train the labeler on a dataset's reals and their attributes; held-out "
                                       "accuracy (categorical) / R^2 (continuous) are printed and saved beside it")
    t.add_argument("--data", required=True, metavar="DIR", help="dataset folder (dataset_tool's or the demo's)")
    t.add_argument("--attributes", default=None, metavar="LIST",
                   help="e.g. smile,yaw,hair_color (default: every attribute the dataset and --labels have)")
    t.add_argument("--labels", default=None, metavar="CSV",
                   help="your own labels: header file,attr1,... (paths as in the dataset's files.json) or "
                        "index,attr1,... (record numbers); numeric columns are continuous, others categorical")
    t.add_argument("--resolution", type=int, default=None, metavar="N",
                   help="dataset level to train on = the resolution of the network it will label (default: the "
                        "dataset's full resolution)")
    t.add_argument("--out", default="labeler.keras", metavar="FILE",
                   help="labeler file (default labeler.keras; scores go to labeler.json)")
    t.add_argument("--epochs", type=int, default=10, metavar="N", help="training epochs (default 10)")
    t.add_argument("--batch", dest="batch_size", type=int, default=64, metavar="N", help="minibatch (default 64)")
    t.add_argument("--heldout", type=float, default=0.1, metavar="F",
                   help="fraction of images kept out to measure accuracy (default 0.1)")
    t.add_argument("--max-images", type=int, default=None, metavar="N", help="use only the first N images")
    t.add_argument("--seed", type=int, default=0, help="split and initialisation seed (default 0)")
    t.add_argument("--overwrite", action="store_true", help="replace existing output files")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")

    p = command("directions", "fit attribute directions in W: the two-layer predictor and a linear baseline",
                "directions.npz")
    p.add_argument("--labeler", required=True, metavar="FILE", help="from `generate.py attributes train`")
    p.add_argument("--attributes", required=True, metavar="LIST",
                   help="e.g. smile,yaw or hair_color:blonde (one class of a categorical attribute)")
    p.add_argument("--samples", type=int, default=2000, metavar="N",
                   help="generated images labelled (default 2000)")
    p.add_argument("--heldout", type=float, default=0.2, metavar="F",
                   help="fraction of samples kept out to measure accuracy (default 0.2)")
    p.add_argument("--hidden", type=int, default=64, metavar="N", help="two-layer predictor width (default 64)")
    p.add_argument("--steps", type=int, default=1500, metavar="N", help="its Adam steps (default 1500)")
    p.add_argument("--seed", type=int, default=0, help="RandomState seed of the sampled z (default 0)")
    p.add_argument("--trunc", dest="truncation_psi", default=1.0, metavar="PSI",
                   help="sample from a truncated W (default 1 = none)")
    p.add_argument("--batch", dest="batch_size", type=int, default=32, metavar="N", help="images per batch")

    p = command("edit", "a grid of edits along an attribute: one row per seed (or w), one column per amount",
                "out/edit.png", progress=False)
    p.add_argument("--directions", required=True, metavar="FILE", help="from `generate.py directions`")
    p.add_argument("--attribute", required=True, metavar="NAME", help="the attribute to change, e.g. smile")
    p.add_argument("--amount", dest="amounts", default="-2:2:5", metavar="START:STOP:COUNT",
                   help="amounts in standard deviations, START:STOP:COUNT or a list (default -2:2:5)")
    rows = p.add_mutually_exclusive_group(required=True)
    rows.add_argument("--seeds", metavar="LIST", help="e.g. 1-4")
    rows.add_argument("--w", metavar="FILE", help="a w.npy (from `generate.py project`: its noise.npz is used)")
    p.add_argument("--mode", choices=["linear", "gradient"], default="linear",
                   help="linear: w + a*n; gradient: descend the two-layer predictor to its target (default linear)")
    p.add_argument("--layers", default="all", help="layers edited: all|coarse|middle|fine|0-3 (default all)")
    p.add_argument("--labeler", default=None, metavar="FILE",
                   help="also read every edited image with this labeler and print how each attribute moved")
    p.add_argument("--steps", type=int, default=200, metavar="N", help="gradient mode's steps (default 200)")
    p.add_argument("--no-hold-others", dest="hold_others", action="store_false",
                   help="let the directions file's other attributes move too (default: hold them)")
    p.add_argument("--trunc", dest="truncation_psi", default=1.0, metavar="PSI", help="for seeds (default 1)")

    p = command("project", "find the w (and noise) that reproduce a photo, as NVIDIA's StyleGAN2 projector")
    p.add_argument("--out", default="out/projection", metavar="DIR",
                   help="output folder: w.npy, noise.npz, target/reconstruction.png, progress.gif, projection.json "
                        "(default out/projection)")
    p.add_argument("--image", required=True, metavar="FILE", help="any size/mode; centre-cropped and resized")
    p.add_argument("--steps", type=int, default=1000, metavar="N", help="optimisation steps (default 1000)")
    p.add_argument("--space", choices=["w", "w+"], default="w", help="W (default) or W+ (one w per layer)")
    p.add_argument("--no-discriminator", dest="use_discriminator", action="store_false",
                   help="pixel and multi-scale loss only, without the discriminator's features")
    p.add_argument("--lpips", default=None, metavar="FILE[,FILE]",
                   help="LPIPS distance as NVIDIA's projector: torchvision's vgg16 .pth and LPIPS's vgg.pth "
                        "(read without running code from them); default: pixel + multi-scale + D features")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")


# Flags whose values may start with '-' (negative numbers): "--scale -3:3:7" must not read as a new flag.
_SIGNED = ("--scale", "--psi", "--trunc", "--amount")


def _join_signed(argv):
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _SIGNED and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cli.quiet_tensorflow(cli.verbose(argv))
    args = vars(build_parser().parse_args(_join_signed(argv)))
    return cli.run("generate.py", lambda: _generate(args), code=2,
                   interrupted="interrupted; no partial files were left behind")


def _generate(args):
    for dest, convert in _converters().items():
        if isinstance(args.get(dest), str):
            args[dest] = convert(args[dest])
    name = args.pop("command").replace("-", "_")
    if name == "timelapse":
        from stylegan_tf.generate.timelapse import make_timelapse as run
    elif name == "curves":
        from stylegan_tf.generate.curves import plot_curves as run
    elif name in ("attributes", "directions", "edit", "project"):
        from stylegan_tf.editing import commands as editing
        run = getattr(editing, name)
    else:
        from stylegan_tf.generate import commands
        run = getattr(commands, name)
    for path in run(**args):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
