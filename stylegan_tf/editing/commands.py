"""One function per editing subcommand of `generate.py` (attributes train, directions, edit, project): validate,
call the library, print the report, return the written paths."""
import os

from stylegan_tf.editing.errors import EditError


def parse_amounts(text, flag="--amount"):
    """'-2:2:5' (START:STOP:COUNT) or a list '-2,0,2' -> list of floats."""
    from stylegan_tf.generate.seeds import parse_float_list, parse_linspace
    text = str(text)
    if ":" in text:
        return [float(a) for a in parse_linspace(text, flag)]
    return parse_float_list(text, flag)


def attributes(action, data, out="labeler.keras", attributes=None, resolution=None, labels=None, epochs=10,
               batch_size=64, heldout=0.1, max_images=None, seed=0, overwrite=False, progress=True):
    """`generate.py attributes train`: train the labeler, print its held-out scores."""
    from stylegan_tf.editing.labeler import format_scores, metrics_path, train_labeler
    if action != "train":
        raise EditError(f"attributes: unknown action '{action}'; use `attributes train`")
    if int(epochs) < 1:
        raise EditError(f"--epochs must be at least 1 (got {epochs})")
    lab = train_labeler(data, attributes, out, resolution, labels, epochs, batch_size, heldout, max_images,
                        seed=seed, overwrite=overwrite, progress=progress)
    print(f"labeler {lab.resolution}x{lab.resolution}, held-out scores:")
    for line in format_scores(lab.metrics["heldout"]):
        print(line)
    return [out, metrics_path(out)]


def directions(network, labeler, attributes, out="directions.npz", samples=2000, heldout=0.2, seed=0, hidden=64,
               steps=1500, truncation_psi=1.0, batch_size=32, overwrite=False, progress=True):
    """`generate.py directions`: fit both predictors, print held-out accuracy and the accuracy-vs-labels curve."""
    from stylegan_tf.editing.directions import fit_directions, format_report
    from stylegan_tf.generate.seeds import parse_float_list
    psi = parse_float_list(truncation_psi, "--trunc")[0] if isinstance(truncation_psi, str) else truncation_psi
    d = fit_directions(network, labeler, attributes, samples, heldout, seed, hidden, steps, psi, out=out,
                       overwrite=overwrite, batch_size=batch_size, progress=progress)
    for line in format_report(d):
        print(line)
    return [out]


def edit(network, directions, attribute, out="out/edit.png", amounts="-2:2:5", seeds=None, w=None, mode="linear",
         layers="all", labeler=None, truncation_psi=1.0, steps=200, hold_others=True, overwrite=False):
    """`generate.py edit`: the grid (rows seeds or w, columns amounts) and how every attribute moved."""
    from stylegan_tf.editing.edits import edit as run_edit
    from stylegan_tf.editing.edits import format_summary, summary_path
    from stylegan_tf.generate.seeds import parse_float_list
    if (seeds is None) == (w is None):
        raise EditError("give either --seeds or --w (a w.npy from `generate.py project`)")
    psi = parse_float_list(truncation_psi, "--trunc")[0] if isinstance(truncation_psi, str) else truncation_psi
    values = parse_amounts(amounts) if isinstance(amounts, str) else list(amounts)
    result = run_edit(network, directions, attribute, values, seeds=seeds, w=w, mode=mode, layers=layers,
                      labeler=labeler, truncation_psi=psi, steps=steps, hold_others=hold_others, out=out,
                      overwrite=overwrite)
    for line in format_summary(result.summary(attribute)):
        print(line)
    return [out, summary_path(out)]


def project(network, image, out="out/projection", steps=1000, space="w", use_discriminator=True, lpips=None,
            seed=0, overwrite=False, progress=True, max_pixels=None):
    """`generate.py project`: w.npy, noise.npz, target/reconstruction PNGs, progress.gif, projection.json."""
    from stylegan_tf.editing.projection import project as run_project
    if os.path.exists(out) and not os.path.isdir(out):
        raise EditError(f"--out: {out} is a file; give a folder")
    p = run_project(network, image, out, steps=steps, space=space, use_discriminator=use_discriminator, lpips=lpips,
                    seed=seed, overwrite=overwrite, progress=progress, max_pixels=max_pixels)
    print(f"projected in {steps} steps: loss {p.losses[0]:.4f} -> {p.losses[-1]:.4f}, PSNR {p.psnr:.2f} dB, "
          f"SSIM {p.ssim:.4f}")
    return p.paths
