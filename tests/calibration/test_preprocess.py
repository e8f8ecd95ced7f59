"""TAO strict-mode preprocessing: padding, resize, colour order, normalization."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bodypose_exporter.calibration.preprocess import Normalization, pad_to_aspect, preprocess
from tests.calibration.conftest import picture


def test_pad_wide_image_pads_top_and_bottom_like_tao() -> None:
    # 100x300 into a 320x448 network: aspect 1.4 wanted, 3.0 given -> pad height.
    image = np.zeros((100, 300, 3), np.uint8)
    padded = pad_to_aspect(image, 320, 448)
    pad = int(300 / (448 / 320) - 100)  # TAO truncates with int()
    assert padded.shape == (100 + pad, 300, 3)
    top = int(pad / 2.0)
    assert (padded[:top] == 128).all() and (padded[top + 100 :] == 128).all()
    assert (padded[top : top + 100] == 0).all()


def test_pad_tall_image_pads_left_and_right_like_tao() -> None:
    image = np.zeros((300, 100, 3), np.uint8)
    padded = pad_to_aspect(image, 320, 448)
    pad = int(300 * (448 / 320) - 100)
    left = int(pad / 2.0)
    assert padded.shape == (300, 100 + pad, 3)
    assert (padded[:, :left] == 128).all() and (padded[:, left + 100 :] == 128).all()


def test_same_aspect_is_not_padded() -> None:
    image = np.zeros((160, 224, 3), np.uint8)
    assert pad_to_aspect(image, 320, 448) is image


def test_normalization_is_pixel_minus_128_over_256_in_rgb_order() -> None:
    bgr = np.zeros((64, 96, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 255, 128, 0  # blue, half green, no red
    out = preprocess(bgr, 64, 96)
    assert out.dtype == np.float32 and out.shape == (64, 96, 3)
    # RGB order: channel 0 is red.
    np.testing.assert_allclose(out[0, 0], [(0 - 128) / 256, 0.0, (255 - 128) / 256], atol=1e-7)


def test_spec_normalization_is_applied_per_channel() -> None:
    bgr = np.full((8, 8, 3), 100, np.uint8)
    norm = Normalization.from_lists([0.0, 0.5, 1.0], [255.0, 256.0, 128.0])
    out = preprocess(bgr, 8, 8, norm)
    np.testing.assert_allclose(out[0, 0], [100 / 255, 100 / 256 - 0.5, 100 / 128 - 1.0], rtol=1e-6)


def test_normalization_needs_three_channels() -> None:
    with pytest.raises(ValueError, match="3 offsets and 3 scales"):
        Normalization.from_lists([0.5], [256.0])


def test_resize_matches_tao_scale_factor_call() -> None:
    # TAO: cv2.resize(padded, (0, 0), fx=W/pw, fy=H/ph, interpolation=cv2.INTER_CUBIC).
    bgr = picture(300, 500, seed=3)
    padded = pad_to_aspect(bgr, 64, 96)
    tao = cv2.resize(
        padded,
        (0, 0),
        fx=96 / padded.shape[1],
        fy=64 / padded.shape[0],
        interpolation=cv2.INTER_CUBIC,
    )
    tao_input = cv2.cvtColor(tao, cv2.COLOR_BGR2RGB) / 256.0 - 0.5
    np.testing.assert_allclose(preprocess(bgr, 64, 96), tao_input, atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (7, 5), (4000, 6000), (6000, 500)])
def test_tiny_and_very_large_images_give_the_network_shape(size: tuple[int, int]) -> None:
    bgr = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = preprocess(bgr, 64, 96)
    assert out.shape == (64, 96, 3)
    assert np.isfinite(out).all() and out.min() >= -0.5 and out.max() < 0.5
