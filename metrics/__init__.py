"""StyleGAN metrics (FID, KID, SWD). Installed as `stylegan_tf.metrics`."""
