"""StyleGAN (Karras et al. 2019) as a registered architecture: the paper's Table-1 generator configurations and
how training options become Generator/Discriminator arguments."""
from stylegan_tf.networks.archs import register_arch

# Generator options of the paper's Table 1 configurations (F = the StyleGAN default).
CONFIGS = {
    "stylegan": {},
    "configF": {},
    "configE": {"style_mixing_prob": 0.0},
    "configD": {"style_mixing_prob": 0.0, "use_noise": False},
    "configC": {"const_input_layer": False, "style_mixing_prob": 0.0, "use_noise": False},
    "configB": {"use_styles": False, "use_pixel_norm": True, "use_instance_norm": False, "mapping_layers": 0,
                "const_input_layer": False, "style_mixing_prob": 0.0, "use_noise": False},
}
# "progan": config B's traditional generator trained with WGAN-GP, ProGAN's loss (lr capped at 0.002 as the
# official "-wgangp" option does). Not NVIDIA's separate ProGAN network code.
CONFIGS["progan"] = dict(CONFIGS["configB"])


def stylegan_kwargs(opts, resolution, num_channels, label_size):
    """(Generator kwargs, Discriminator kwargs) for training options `opts` (anything with the TrainingOptions
    attributes) at `resolution`."""
    from stylegan_tf.networks.mapping import mapping_generator_kwargs
    # The mapping network (--mapping fc|v1..v4, networks/mapping.py registry) and its sizes.
    g = dict(resolution=resolution, num_channels=num_channels, label_size=label_size,
             **mapping_generator_kwargs(opts), fmap_base=opts.fmap_base, fmap_max=opts.fmap_max,
             fmap_decay=opts.fmap_decay)
    g.update(CONFIGS[opts.config])
    if getattr(opts, "style_mixing_prob", None) is not None:
        g["style_mixing_prob"] = float(opts.style_mixing_prob)
    d = dict(resolution=resolution, num_channels=num_channels, label_size=label_size,
             fmap_base=opts.fmap_base, fmap_max=opts.fmap_max, fmap_decay=opts.fmap_decay)
    if getattr(opts, "mbstd_group_size", None) is not None:
        d["mbstd_group_size"] = int(opts.mbstd_group_size)
    return g, d


def build_stylegan(opts, resolution, num_channels, label_size):
    """StyleGAN's G and D for training options `opts`."""
    from stylegan_tf.networks.discriminator import Discriminator
    from stylegan_tf.networks.generator import Generator
    g_kw, d_kw = stylegan_kwargs(opts, resolution, num_channels, label_size)
    return Generator(**g_kw), Discriminator(**d_kw)


# The StyleGAN defaults are TrainingOptions' own (the official FFHQ ones): nothing to override.
register_arch("stylegan", build=build_stylegan, data="single", defaults={}, progressive=True, gs="ema",
              styles=True, sizing="fmap", min_resolution=4,
              description="StyleGAN (Karras et al. 2019): mapping + synthesis, progressive growing, R1, Gs EMA")
