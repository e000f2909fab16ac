"""ADA's image-space filtering: four frequency bands (octaves below Nyquist: [0, 1/16], [1/16, 1/8], [1/8, 1/4],
[1/4, 1/2] of the sampling rate), each amplified by a drawn gain, the gains renormalised so that an image with a
1/f power spectrum keeps its power. The bands come from the orthogonal 'sym2' wavelet's half-band filters; one
separable per-sample filter applies the combined gains with reflect padding."""
import numpy as np
from keras import ops

from stylegan_tf.augment.resample import reflect_pad

# The orthogonal 'sym2' symlet low-pass (Daubechies' published coefficients, as in PyWavelets).
SYM2 = np.array([-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025])
EXPECTED_POWER = np.array([10, 1, 1, 1], np.float32) / 13      # a 1/f spectrum's share of each band


def _filter_bank():
    """[4, taps] zero-phase filters, one per band; they sum to a unit impulse."""
    low = SYM2
    high = SYM2 * (-1.0) ** np.arange(len(SYM2))
    low2 = np.convolve(low, low[::-1]) / 2      # half-band low-pass, zero phase
    high2 = np.convolve(high, high[::-1]) / 2   # its complement
    bank = np.eye(4, 1)
    for band in range(1, 4):
        # Halve every existing band's frequencies (insert zeros between taps), then split the lowest again.
        stretched = np.zeros((4, 2 * bank.shape[1] - 1))
        stretched[:, ::2] = bank
        bank = np.stack([np.convolve(row, low2) for row in stretched])
        centre = (bank.shape[1] - len(high2)) // 2
        bank[band, centre:centre + len(high2)] += high2
    return bank.astype(np.float32)


FILTER_BANK = _filter_bank()


def band_gains(band_draws, n):
    """The combined per-band gains [N, 4] from ADA's drawn amplifications, one [N] per band (1 = unchanged):
    each band's gain applied in turn, renormalised to the expected power after each, as ADA accumulates them."""
    g = ops.ones((n, 4))
    for band, amplification in enumerate(band_draws):
        t = ops.stack([amplification if i == band else ops.ones((n,)) for i in range(4)], axis=1)
        t = t / ops.sqrt(ops.sum(EXPECTED_POWER * ops.square(t), axis=1, keepdims=True))
        g = g * t
    return g


def at_level(gains, octaves_down):
    """The gains for a level `octaves_down` octaves below the full image: its band j holds the full image's
    band j - octaves_down (the lowest band takes everything below)."""
    source = [max(0, j - octaves_down) for j in range(4)]
    return ops.take(gains, source, axis=1)


def apply_filter(images, gains):
    """Filter NHWC images with per-sample band gains [N, 4] (all ones: the image unchanged).

    Example:
        >>> sharper = apply_filter(images, ops.convert_to_tensor([[1.0, 1.0, 1.0, 2.0]] * n))
    """
    taps = ops.matmul(gains, FILTER_BANK)               # [N, taps]
    count = FILTER_BANK.shape[1]
    n, height, width, channels = images.shape
    # One depthwise convolution over the batch folded into channels: each (sample, channel) its sample's filter.
    x = ops.reshape(ops.transpose(reflect_pad(images, count // 2, count // 2), (1, 2, 0, 3)),
                    (1, height + 2 * (count // 2), width + 2 * (count // 2), n * channels))
    kernel = ops.transpose(ops.repeat(taps, channels, axis=0))            # [taps, N*C]
    x = ops.depthwise_conv(x, ops.reshape(kernel, (1, count, n * channels, 1)), strides=1, padding="valid")
    x = ops.depthwise_conv(x, ops.reshape(kernel, (count, 1, n * channels, 1)), strides=1, padding="valid")
    return ops.transpose(ops.reshape(x, (height, width, n, channels)), (2, 0, 1, 3))
