"""The image directory: what counts as an image, the order, decoding and corrupt files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bodypose_exporter.calibration.images import CorruptImageError, decode, list_images
from bodypose_exporter.errors import UserError
from tests.calibration.conftest import WriteImages, picture


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--cal_image_dir .*nowhere does not exist"):
        list_images(tmp_path / "nowhere")


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="is not a directory"):
        list_images(tmp_path / "x.jpg")


def test_only_jpg_jpeg_png_count_any_case(tmp_path: Path, write_images: WriteImages) -> None:
    write_images(tmp_path, 2, suffix=".jpg")
    write_images(tmp_path, 1, suffix=".JPEG", start=10)
    write_images(tmp_path, 1, suffix=".png", start=20)
    write_images(tmp_path, 1, suffix=".bmp", start=30)
    (tmp_path / "labels.json").write_text("{}")
    (tmp_path / "README").write_text("hello")
    (tmp_path / "sub.jpg").mkdir()  # a directory, even one named like an image, is skipped
    listing = list_images(tmp_path)
    assert sorted(p.name for p in listing.images) == [
        "img_0000.jpg",
        "img_0001.jpg",
        "img_0010.JPEG",
        "img_0020.png",
    ]
    assert sorted(p.name for p in listing.ignored) == ["README", "img_0030.bmp", "labels.json"]


def test_order_is_a_seeded_shuffle(tmp_path: Path, write_images: WriteImages) -> None:
    write_images(tmp_path, 30)
    first, again, other = (
        list_images(tmp_path, 0),
        list_images(tmp_path, 0),
        list_images(tmp_path, 1),
    )
    assert first.images == again.images
    assert first.images != other.images
    assert sorted(first.images) == sorted(other.images)


def test_grayscale_and_rgba_decode_to_three_channels(tmp_path: Path) -> None:
    gray = picture(20, 30, seed=1)[..., 0]
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    cv2.imwrite(str(tmp_path / "gray.jpg"), gray)
    bgra = np.dstack([picture(20, 30, seed=2), np.full((20, 30), 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    g = decode(tmp_path / "gray.png")
    assert g.shape == (20, 30, 3) and (g[..., 0] == gray).all() and (g[..., 2] == gray).all()
    assert decode(tmp_path / "gray.jpg").shape == (20, 30, 3)
    rgba = decode(tmp_path / "rgba.png")
    assert rgba.shape == (20, 30, 3) and (rgba == bgra[..., :3]).all()  # alpha dropped


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    deep = picture(10, 12, seed=4).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert (decode(tmp_path / "deep.png") == picture(10, 12, seed=4)).all()


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.jpg", b"", "empty file"),
        ("text.jpg", b"this is not a picture" * 100, "not a JPEG"),
        ("text.png", b"this is not a picture" * 100, "not a PNG"),
    ],
)
def test_non_images_with_image_names_are_corrupt(
    tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CorruptImageError, match=why):
        decode(tmp_path / name)


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    # Some OpenCV/libjpeg builds decode a truncated JPEG into a grey-filled picture
    # without an error; the end-of-image check catches it whatever the build does.
    ok, data = cv2.imencode(".jpg", picture(200, 300, seed=5))
    assert ok
    (tmp_path / "half.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(CorruptImageError, match="truncated JPEG"):
        decode(tmp_path / "half.jpg")


def test_truncated_png_is_corrupt(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".png", picture(200, 300, seed=6))
    assert ok
    (tmp_path / "half.png").write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(CorruptImageError, match="truncated PNG"):
        decode(tmp_path / "half.png")


def test_jpeg_with_garbage_inside_is_corrupt(tmp_path: Path) -> None:
    _, data = cv2.imencode(".jpg", picture(64, 64, seed=7))
    raw = bytearray(data.tobytes())
    raw[2:200] = b"\x00" * 198  # destroys the headers, keeps start and end markers
    (tmp_path / "bad.jpg").write_bytes(bytes(raw))
    with pytest.raises(CorruptImageError, match="cannot be decoded"):
        decode(tmp_path / "bad.jpg")
