"""The built-in demo dataset: deterministic, attributes stored and tied to the pictures, labels."""
import os

import numpy as np
import pytest

from stylegan_tf.data import demo_faces


def test_render_is_deterministic_varied_and_matches_attributes():
    a, attrs_a = demo_faces.render(5, 17, 32)
    b, attrs_b = demo_faces.render(5, 17, 32)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(attrs_a, attrs_b)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    faces = [demo_faces.render(5, i, 32) for i in range(12)]
    flat = np.stack([f[0] for f in faces]).reshape(12, -1).astype(np.int32)
    assert len({f.tobytes() for f in flat}) == 12
    assert np.abs(flat[:, None] - flat[None]).mean(-1)[~np.eye(12, dtype=bool)].min() > 5
    for image, attrs in faces:
        a = dict(zip(demo_faces.ATTRIBUTE_NAMES, attrs))
        # The top-left corner is background, whose hue is a stored attribute.
        np.testing.assert_allclose(image[0, 0], demo_faces._hsv(a["background_hue"], 0.42, 0.93), atol=1)
        assert image.std() > 25  # bold, high contrast
    for spec, value in zip(demo_faces.ATTRIBUTES, faces[0][1]):
        if spec["type"] == "categorical":
            assert value == int(value) and 0 <= value < len(spec["categories"])
        else:
            assert spec["range"][0] <= value <= spec["range"][1]


def test_create_demo_deterministic_across_workers_with_labels(tmp_path):
    pytest.importorskip("tensorflow")
    from stylegan_tf.data import create_demo
    one = create_demo(tmp_path / "one", count=40, resolution=16, seed=3, label_attribute="hair_color",
                      workers=1, progress=False)
    two = create_demo(tmp_path / "two", count=40, resolution=16, seed=3, label_attribute="hair_color",
                      workers=2, progress=False)
    for r in (16, 8, 4):
        a = open(one.levels[r], "rb").read()
        assert a == open(two.levels[r], "rb").read()
    assert (one.num_images, one.resolution, one.num_channels) == (40, 16, 3)
    assert one.label_names == demo_faces.CATEGORICAL["hair_color"] and one.label_size == 9
    hair = one.attributes["hair_color"].astype(int)
    np.testing.assert_array_equal(one.labels.argmax(1), hair)
    np.testing.assert_array_equal(one.labels.sum(1), np.ones(40))
    assert set(one.attributes) == set(demo_faces.ATTRIBUTE_NAMES)
    ref = np.stack([demo_faces.render(3, i, 16)[0] for i in range(40)])
    np.testing.assert_array_equal(np.concatenate(list(one.iterate_uint8())), ref)
    np.testing.assert_allclose(one.attributes["smile"], [demo_faces.sample_attributes(3, i)[0][7] for i in range(40)],
                               rtol=1e-6)
    with pytest.raises(FileExistsError, match="--overwrite"):
        create_demo(tmp_path / "one", count=4, resolution=16, progress=False)
    again = create_demo(tmp_path / "one", count=4, resolution=16, seed=9, overwrite=True, progress=False)
    assert again.num_images == 4 and again.label_size == 0
    x, y = next(iter(again.make_tf_dataset(8, batch_size=2, seed=0)))
    assert x.shape == (2, 8, 8, 3) and y.shape == (2, 0)  # no labels: an empty label axis
    with pytest.raises(ValueError, match="label-attribute"):
        create_demo(tmp_path / "bad", count=4, resolution=16, label_attribute="smile", progress=False)
    with pytest.raises(ValueError, match="power of two"):
        create_demo(tmp_path / "bad", count=4, resolution=48, progress=False)
    assert not os.path.exists(tmp_path / "bad")
