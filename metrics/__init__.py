"""StyleGAN metrics (FID, KID, SWD, PPL, precision/recall, IS). Installed as `stylegan_tf.metrics`.

- `inception`: FID-Inception (the 2015 graph every comparable FID uses) in Keras; `torch_pth`: its weights
  read from pytorch-fid's `.pth` without torch.
- `vgg16`: torchvision's VGG16 and the weight files of the perceptual metrics; `lpips`: LPIPS-VGG16.
- `frechet_inception_distance`, `kernel_inception_distance`, `sliced_wasserstein`, `perceptual_path_length`,
  `precision_recall`, `inception_score`: the metrics.
- `metric_base`: registry, shared context and caches, `calc_metrics`; `python -m stylegan_tf.metrics`: the CLI.

Modules are imported on demand (`from stylegan_tf.metrics import metric_base`), so importing this package
stays cheap. See docs/metrics.md.
"""
