"""explorer.data: safe decoding of real files made here with PIL, the model-input
transform, bundled samples, and the dataset loaders (no mocks)."""

from __future__ import annotations

import gzip
import io
import struct
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer import data
from explorer.data import DataError, ImageError, decode_image, to_model_input


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (valid CRCs) followed by a tiny IDAT and IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def rgb(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img)


# ----------------------------------------------------------------------------- decode_image: formats

@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})])
def test_lossless_round_trip_is_exact(fmt, kw):
    a = noise(24, 40)
    out = decode_image(encode(Image.fromarray(a), fmt, **kw))
    assert out.size == (40, 24)
    np.testing.assert_array_equal(rgb(out), a)


def test_jpeg_round_trip_is_close():
    y, x = np.mgrid[0:48, 0:64]
    a = np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)  # smooth: JPEG keeps it well
    out = rgb(decode_image(encode(Image.fromarray(a), "JPEG", quality=95)))
    assert out.shape == (48, 64, 3)
    assert np.abs(out.astype(int) - a).mean() < 3


def test_gif_round_trip_is_exact_for_palette_image():
    p = Image.fromarray(np.arange(16 * 16, dtype=np.uint8).reshape(16, 16) % 4, "P")
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 10]
    p.putpalette(palette + [0] * (768 - len(palette)))
    out = rgb(decode_image(encode(p, "GIF")))
    expected = np.array(palette, np.uint8).reshape(4, 3)[np.asarray(p)]
    np.testing.assert_array_equal(out, expected)


def test_multi_frame_gif_takes_frame_zero():
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    blob = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(blob)).n_frames == 3
    out = rgb(decode_image(blob))
    assert (out == [255, 0, 0]).all()


def test_animated_webp_takes_frame_zero():
    frames = [Image.new("RGB", (16, 16), c) for c in [(0, 0, 255), (255, 0, 0)]]
    blob = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=50)
    out = rgb(decode_image(blob))
    assert (out == [0, 0, 255]).all()


def test_exif_orientation_6_rotates_clockwise():
    a = np.full((32, 48, 3), 255, np.uint8)  # 48 wide, 32 high, red block at the stored top-left
    a[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = rgb(decode_image(encode(Image.fromarray(a), "JPEG", quality=95, exif=exif.tobytes())))
    assert out.shape == (48, 32, 3)  # now 32 wide, 48 high
    np.testing.assert_allclose(out[8, 24], [255, 0, 0], atol=12)  # top-left went to the top-right
    np.testing.assert_allclose(out[8, 8], [255, 255, 255], atol=12)
    assert np.abs(out.astype(int) - np.rot90(a, k=-1)).mean() < 4


# ----------------------------------------------------------------------------- decode_image: modes

def test_palette_with_partial_transparency_composites_on_white():
    p = Image.fromarray(np.array([[0, 1, 2] * 4] * 12, np.uint8), "P")
    p.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (768 - 9))
    p.info["transparency"] = bytes([255, 128, 0])  # red opaque, blue half, green invisible
    out = rgb(decode_image(encode(p, "PNG")))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [127, 127, 255]  # 0 * 128/255 + 255 * 127/255 = 127
    assert out[0, 2].tolist() == [255, 255, 255]


def test_gif_transparent_index_becomes_white():
    p = Image.fromarray(np.array([[0, 1] * 6] * 12, np.uint8), "P")
    p.putpalette([0, 0, 0, 10, 200, 30] + [0] * (768 - 6))
    out = rgb(decode_image(encode(p, "GIF", transparency=0)))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [10, 200, 30]


def test_la_composites_on_white():
    la = np.zeros((8, 12, 2), np.uint8)
    la[:, :4] = (0, 128)
    la[:, 4:8] = (200, 0)
    la[:, 8:] = (200, 255)
    out = rgb(decode_image(encode(Image.fromarray(la, "LA"), "PNG")))
    assert out[0, 0].tolist() == [127, 127, 127]
    assert out[0, 5].tolist() == [255, 255, 255]
    assert out[0, 9].tolist() == [200, 200, 200]


def test_rgba_composites_on_white():
    a = np.zeros((8, 16, 4), np.uint8)
    a[:, :4] = (255, 0, 0, 128)
    a[:, 4:8] = (0, 0, 255, 64)
    a[:, 8:12] = (10, 20, 30, 255)
    a[:, 12:] = (10, 20, 30, 0)
    out = rgb(decode_image(encode(Image.fromarray(a, "RGBA"), "PNG")))
    assert out[0, 0].tolist() == [255, 127, 127]
    assert out[0, 4].tolist() == [191, 191, 255]  # 255 * (1 - 64/255) = 191
    assert out[0, 8].tolist() == [10, 20, 30]
    assert out[0, 12].tolist() == [255, 255, 255]


def test_cmyk_tiff_and_jpeg():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 0, 0))  # magenta ink
    assert rgb(decode_image(encode(cmyk, "TIFF")))[0, 0].tolist() == [255, 0, 255]
    np.testing.assert_allclose(rgb(decode_image(encode(cmyk, "JPEG", quality=95)))[8, 8], [255, 0, 255], atol=8)


def test_16_bit_grayscale_png_is_scaled_not_clipped():
    a = np.array([[0, 257 * 100, 65535, 40000]], np.uint16).repeat(8, 0).repeat(4, 1)
    src = Image.fromarray(a)
    blob = encode(src, "PNG")
    assert Image.open(io.BytesIO(blob)).mode.startswith("I")
    out = rgb(decode_image(blob))
    assert out[0, ::4, 0].tolist() == [0, 100, 255, round(40000 / 257)]
    assert (out[..., 0] == out[..., 2]).all()


def test_float_tiff_in_unit_range_scales_by_255():
    out = rgb(decode_image(encode(Image.fromarray(np.full((8, 8), 0.25, np.float32), "F"), "TIFF")))
    assert out[0, 0].tolist() == [64, 64, 64]


def test_one_bit_image():
    a = (np.indices((16, 16)).sum(0) % 2).astype(bool)
    for fmt in ("PNG", "BMP", "TIFF"):
        out = rgb(decode_image(encode(Image.fromarray(a).convert("1"), fmt)))
        np.testing.assert_array_equal(out[..., 1], np.where(a, 255, 0))


# ----------------------------------------------------------------------------- decode_image: refusals

def test_truncated_png_and_jpeg_are_refused():
    img = Image.fromarray(noise(64, 64))
    for fmt in ("PNG", "JPEG"):
        blob = encode(img, fmt)
        with pytest.raises(ImageError, match="truncated"):
            decode_image(blob[: len(blob) // 2])


def test_random_bytes_and_empty_are_refused():
    with pytest.raises(ImageError, match="not an image file.*PNG, JPEG"):
        decode_image(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")


def test_text_file_named_png_is_refused(tmp_path):
    path = tmp_path / "holiday.png"
    path.write_text("this is not a picture\n" * 10)
    with pytest.raises(ImageError, match="not an image file"):
        decode_image(path.read_bytes())
    with pytest.raises(ImageError, match="not an image file"):
        data.decode_image_file(path)


def test_formats_outside_the_allow_list_are_refused():
    ppm = encode(Image.fromarray(noise(16, 16)), "PPM")
    assert Image.open(io.BytesIO(ppm)).format == "PPM"  # PIL itself would read it
    with pytest.raises(ImageError, match="PNG, JPEG, WebP, GIF, BMP or TIFF"):
        decode_image(ppm)


def test_degenerate_sizes_are_refused():
    with pytest.raises(ImageError, match="0x0"):
        decode_image(png_header_only(0, 0))
    with pytest.raises(ImageError, match=r"1x50 pixels; at least 8x8"):
        decode_image(encode(Image.new("RGB", (1, 50)), "PNG"))
    assert decode_image(encode(Image.new("RGB", (8, 8)), "PNG")).size == (8, 8)


def test_bomb_header_is_refused_before_decoding():
    before = Image.MAX_IMAGE_PIXELS
    blob = png_header_only(30000, 30000)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="900 MP, above the 40 MP limit"):
        decode_image(blob)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 2_000_000  # an RGB 30000x30000 buffer would be 2.7 GB
    assert Image.MAX_IMAGE_PIXELS == before


def test_our_limit_applies_below_pils_own():
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 64 MP is under PIL's warning threshold: no warning either
        with pytest.raises(ImageError, match=r"8000x8000 = 64 MP, above the 40 MP limit"):
            decode_image(png_header_only(8000, 8000))
        with pytest.raises(ImageError, match="MP"):  # 100 MP: PIL warns; as an error it is still ours
            decode_image(png_header_only(10000, 10000))
    assert Image.MAX_IMAGE_PIXELS == before


def test_max_pixels_boundary():
    blob = encode(Image.new("RGB", (100, 50)), "PNG")
    assert decode_image(blob, max_pixels=5000).size == (100, 50)
    with pytest.raises(ImageError, match="100x50"):
        decode_image(blob, max_pixels=4999)


# ----------------------------------------------------------------------------- to_model_input

def test_model_input_shapes_and_ranges():
    photo = data.sample_photos()["chelsea"]
    for size in [(1, 28, 28), (3, 224, 224), (3, 32, 32), (3, 224, 160)]:
        x = to_model_input(photo, size)
        assert x.shape == (1, *size) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.05


def test_imagenet_transform_matches_torchvision():
    from torchvision import transforms

    img = Image.fromarray(data.sample_photos()["chelsea"])  # 451x300
    ref = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])(img)
    x = to_model_input(img, (3, 224, 224))
    torch.testing.assert_close(x[0], ref, atol=1 / 255 + 1e-6, rtol=0)


def test_grayscale_uses_luma():
    x = to_model_input(Image.new("RGB", (40, 40), (255, 0, 0)), (1, 32, 32))
    assert torch.allclose(x, torch.full_like(x, 76 / 255))  # 0.299 * 255


def test_fashion_mnist_auto_invert():
    a = np.full((28, 28), 255, np.uint8)
    a[8:20, 8:20] = 0  # dark object on a white background, like a product photo
    x = to_model_input(a, (1, 28, 28))
    assert x[0, 0, 0, 0] == 0 and x[0, 0, 14, 14] == 1
    assert to_model_input(a, (1, 28, 28), invert=False)[0, 0, 0, 0] == 1
    assert to_model_input(a, (1, 32, 32))[0, 0, 0, 0] == 1  # only 28x28 inputs are auto-inverted
    fm = data.bundled_fashion_mnist("test")
    original = fm.images[0, 0].numpy()
    torch.testing.assert_close(to_model_input(original, (1, 28, 28))[0, 0], fm.float_images(0)[0])


# ----------------------------------------------------------------------------- samples and names

def test_imagenet_classes():
    names = data.imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[967] == "espresso" and names[0] == "tench"


def test_sample_photos_and_textures_load_offline():
    photos = data.sample_photos()
    assert {"astronaut", "chelsea", "coffee", "rocket"} <= set(photos)
    assert photos["chelsea"].shape == (300, 451, 3)
    for a in photos.values():
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    with pytest.raises(ValueError):
        photos["chelsea"][0, 0, 0] = 1  # shared cached arrays are read-only
    textures = data.sample_textures()
    assert {"brick", "grass", "gravel"} <= set(textures)
    assert (textures["brick"][..., 0] == textures["brick"][..., 2]).all() and textures["brick"].std() > 10


# ----------------------------------------------------------------------------- Fashion-MNIST loaders

def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    blob = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    blob += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)


@pytest.mark.parametrize("gz", [False, True])
def test_load_fashion_mnist_from_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, gz)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz)
    ds = data.load_fashion_mnist("test", root=tmp_path)
    assert ds.images.shape == (7, 1, 28, 28) and ds.images.dtype == torch.uint8
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)
    np.testing.assert_array_equal(ds.labels.numpy(), labels)
    with pytest.raises(DataError, match="not found"):
        data.load_fashion_mnist("train", root=tmp_path)


def test_truncated_idx_raises_data_error(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (7, 28, 28)), False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 7), False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        data.load_fashion_mnist("test", root=tmp_path)
    path.write_bytes(path.read_bytes()[:9])  # cut inside the shape header
    with pytest.raises(DataError, match="header"):
        data.load_fashion_mnist("test", root=tmp_path)
    gz = tmp_path / "gz"
    gz.mkdir()
    write_idx(gz / "t10k-images-idx3-ubyte", rng.integers(0, 256, (7, 28, 28)), True)
    write_idx(gz / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 7), True)
    cut = gz / "t10k-images-idx3-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:-200])
    with pytest.raises(DataError):
        data.load_fashion_mnist("test", root=gz)


def test_bundled_subset_is_balanced():
    for split, per_class in [("train", 200), ("test", 100)]:
        ds = data.bundled_fashion_mnist(split)
        assert torch.bincount(ds.labels, minlength=10).tolist() == [per_class] * 10
        assert ds.images.shape[1:] == (1, 28, 28)


def test_fashion_mnist_sample_from_bundled_subset():
    index = np.load(data.BUNDLED_FASHION_MNIST)["test_index"]
    ds = data.bundled_fashion_mnist("test")
    k = 17
    x, y = data.fashion_mnist_sample(int(index[k]), "test", prefer_full=False)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    torch.testing.assert_close(x, ds.float_images(slice(k, k + 1)))
    assert y == int(ds.labels[k])
    missing = int(np.setdiff1d(np.arange(10_000), index)[0])
    with pytest.raises(data.DataIndexError, match="not in the bundled subset"):
        data.fashion_mnist_sample(missing, prefer_full=False)
    with pytest.raises(IndexError, match="out of range"):
        data.fashion_mnist_sample(10_000)
    with pytest.raises(DataError, match="out of range"):
        data.fashion_mnist_sample(-1)


def test_fashion_mnist_sample_full_set_agrees_with_subset():
    try:
        data.load_fashion_mnist("test")
    except DataError:
        pytest.skip("full Fashion-MNIST not installed")
    index = np.load(data.BUNDLED_FASHION_MNIST)["test_index"]
    for k in (0, 123, 999):
        full = data.fashion_mnist_sample(int(index[k]))
        subset = data.fashion_mnist_sample(int(index[k]), prefer_full=False)
        torch.testing.assert_close(full[0], subset[0])
        assert full[1] == subset[1]
    missing = int(np.setdiff1d(np.arange(10_000), index)[0])
    assert data.fashion_mnist_sample(missing)[0].shape == (1, 1, 28, 28)  # only the full set has it


# ----------------------------------------------------------------------------- CIFAR-10

def test_cifar10_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="download=True") as e:
        data.load_cifar10("test")
    assert str(tmp_path / "nowhere") in str(e.value)
    fake = tmp_path / "fake" / "cifar-10-batches-py"
    fake.mkdir(parents=True)
    for name in ["data_batch_1", "test_batch", "batches.meta"]:
        (fake / name).write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="corrupted"):  # md5 is checked before anything is unpickled
        data.load_cifar10("test", root=fake)


def test_cifar10_when_present():
    try:
        ds = data.load_cifar10("test")
    except DataError:
        pytest.skip("CIFAR-10 not on disk")
    assert ds.images.shape == (10_000, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels).tolist() == [1000] * 10


# ----------------------------------------------------------------------------- class-folder trees

def test_image_folder_skips_hostile_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "nested").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "a" / f"red{i}.png").write_bytes(encode(Image.new("RGB", (40, 30), (255, 0, 0)), "PNG"))
    for i in range(2):
        (tmp_path / "b" / "nested" / f"blue{i}.jpg").write_bytes(
            encode(Image.new("RGB", (30, 40), (0, 0, 255)), "JPEG"))
    (tmp_path / "a" / "evil.png").write_text("<script>")
    noisy = encode(Image.fromarray(noise(64, 64)), "PNG")
    (tmp_path / "a" / "cut.png").write_bytes(noisy[: len(noisy) // 2])
    (tmp_path / "b" / "x.jpg").write_bytes(np.random.default_rng(2).bytes(500))
    (tmp_path / "b" / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0" * 10)  # hidden: not even counted
    with pytest.warns(UserWarning, match="skipped 4 of 9 files"):
        ds = data.image_folder(tmp_path, (3, 32, 32))
    assert ds.class_names == ("a", "b") and len(ds) == 5
    assert sorted(p.name for p, _ in ds.skipped) == ["bomb.png", "cut.png", "evil.png", "x.jpg"]
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and y == 0 and x[0].min() == 1 and x[1:].max() == 0
    x, y = ds[4]
    assert y == 1 and x[2].min() > 0.95 and x[0].max() < 0.05
    loader = torch.utils.data.DataLoader(ds, batch_size=5)
    xb, yb = next(iter(loader))
    assert xb.shape == (5, 3, 32, 32) and yb.tolist() == [0, 0, 0, 1, 1]

    with pytest.warns(UserWarning, match="skipped 3 of 9"):  # headers only: the cut PNG gets through
        fast = data.image_folder(tmp_path, (3, 32, 32), verify=False)
    cut = [i for i, (p, _) in enumerate(fast.samples) if p.name == "cut.png"]
    with pytest.raises(ImageError, match="truncated"):
        fast[cut[0]]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        data.image_folder(tmp_path / "missing", (3, 32, 32))
    with pytest.raises(DataError, match="no class folders"):
        data.image_folder(tmp_path, (3, 32, 32))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.png").write_text("nope")
    with pytest.raises(DataError, match="no readable image"), pytest.warns(UserWarning):
        data.image_folder(tmp_path, (3, 32, 32))
    with pytest.raises(DataError, match="not among"):
        data.image_folder(tmp_path, (3, 32, 32), class_names=("dog", "bird"))


def test_export_then_image_folder_round_trip(tmp_path):
    fm = data.bundled_fashion_mnist("test")
    sub = data.TensorDataset(fm.images[:40], fm.labels[:40], fm.class_names, fm.name)
    assert data.export_image_folder(sub, tmp_path) == 40
    assert (tmp_path / "T-shirt_top").is_dir()
    ds = data.image_folder(tmp_path, (1, 28, 28), class_names=data.FASHION_MNIST_CLASSES)
    assert len(ds) == 40 and ds.skipped == []
    for i, (path, label) in enumerate(ds.samples):
        k = int(path.stem)
        assert label == int(sub.labels[k])
        torch.testing.assert_close(ds[i][0], sub.float_images(k), atol=0, rtol=0)
    by_folder = data.image_folder(tmp_path, (1, 28, 28))
    assert by_folder.class_names == tuple(sorted(set(data.class_folder_names(fm.class_names))))


def test_export_rgb(tmp_path):
    images = torch.from_numpy(noise(32, 32)).permute(2, 0, 1)[None].repeat(3, 1, 1, 1)
    ds = data.TensorDataset(images, torch.tensor([0, 1, 1]), ("cat", "dog"), "tiny")
    data.export_image_folder(ds, tmp_path, limit=2)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "cat/00000.png", "dog/00001.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "dog" / "00001.png")), noise(32, 32))


def test_class_folder_names():
    assert data.class_folder_names(["T-shirt/top", "a:b", "x"]) == ["T-shirt_top", "a_b", "x"]
    assert data.class_folder_names(["a/b", "a_b", "c"]) == ["a_b-0", "a_b-1", "c"]
