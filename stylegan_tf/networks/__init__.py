"""StyleGAN networks: Generator (mapping + synthesis), Discriminator, and the Networks container."""
from stylegan_tf.networks.channels import nf
from stylegan_tf.networks.container import Networks
from stylegan_tf.networks.discriminator import Discriminator, DiscriminatorBlock, DiscriminatorFinalBlock
from stylegan_tf.networks.generator import Generator
from stylegan_tf.networks.mapping import MappingNetwork
from stylegan_tf.networks.style_mixing import mix_styles, mixing_cutoff
from stylegan_tf.networks.synthesis import SynthesisNetwork
from stylegan_tf.networks.truncation import truncate

__all__ = ["nf", "Networks", "Discriminator", "DiscriminatorBlock", "DiscriminatorFinalBlock", "Generator",
           "MappingNetwork", "mix_styles", "mixing_cutoff", "SynthesisNetwork", "truncate"]
