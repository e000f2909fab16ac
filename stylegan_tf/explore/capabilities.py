"""What a network can show in the explorer, and in one line why not: the page disables a control it cannot
honour and shows this reason beside it, instead of failing when the control is used.

DCGAN and MSG-GAN have no learned W (no truncation, style mixing, W walks or projection); a per-level mapping
(v1..v4) gives each resolution level its own style, so a projection into the single-w space W is undefined
there (W+ works); editing needs a directions file fitted on this network.
"""
import numpy as np


def capabilities(Gs, directions=None, labeler=None):
    """{feature: None (available) or the reason it is not} for every feature the explorer offers.

    Features: styles, truncation, mixing, mixing_presets, w_space, noise, class, edit, labeler, projection,
    projection_w.

    Example:
        >>> capabilities(dcgan_Gs)["mixing"]
        'style mixing needs a StyleGAN generator (...); this network is dcgan: ...'
    """
    from stylegan_tf.networks.archs import ArchError, arch_of, check_figure
    why = {}
    try:
        check_figure(Gs, "style-mixing")
        no_styles = None
    except ArchError:
        no_styles = f"needs a StyleGAN generator (mapping network, styles); this network is {arch_of(Gs)}"
    why["styles"] = no_styles and f"styles {no_styles}"
    why["mixing"] = no_styles and f"style mixing {no_styles}"
    why["truncation"] = no_styles and f"truncation {no_styles}"
    num_styles = int(getattr(Gs, "num_styles", 1))
    why["mixing_presets"] = why["mixing"] or (
        None if num_styles >= 3 else f"coarse/middle/fine need 3 or more style layers; this network has {num_styles}")
    layers = int(getattr(getattr(Gs, "mapping", None), "mapping_layers", 0) or 0)
    why["w_space"] = None if layers >= 1 else \
        "this network has no learned W (no mapping layers): walks happen in Z"
    buffers = Gs.noise_buffers() if hasattr(Gs, "noise_buffers") else []
    why["noise"] = None if len(buffers) else "this network has no noise inputs"
    why["class"] = None if int(getattr(Gs, "label_size", 0) or 0) else "this network is unconditional (no classes)"
    why["edit"] = why["styles"] or (None if directions is not None else
                                    "no directions file: start with --directions dirs.npz (made by `generate.py "
                                    "directions`, docs/editing.md)")
    why["labeler"] = None if labeler is not None else \
        "no labeler: start with --labeler labeler.keras to read the image's attributes"
    why["projection"] = _projection(Gs)
    why["projection_w"] = why["projection"] or (
        "this network's mapping gives each resolution level its own style: project into W+"
        if getattr(Gs, "per_level_styles", False) else None)
    return why


def _projection(Gs):
    synthesis = getattr(Gs, "synthesis", None)
    if synthesis is None or not hasattr(synthesis, "epilogues"):
        return f"projection needs a StyleGAN synthesis network (this generator is a {type(Gs).__name__})"
    lod = float(np.asarray(getattr(Gs, "lod", 0.0)))
    if lod != 0.0:
        return f"the generator is still growing (lod {lod:.2f}); projection needs a network trained to full resolution"
    try:
        import keras
        backend = keras.backend.backend()
    except ImportError:
        backend = "tensorflow"
    if backend != "tensorflow":
        return f"projection differentiates through the generator with TensorFlow (Keras runs on {backend})"
    return None
