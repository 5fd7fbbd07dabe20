"""A generated corpus of hostile and unusual image uploads, for tests/test_hostile_uploads.py and the e2e tests.

``corpus()`` builds, deterministically and in memory (a second or two), a few hundred
files of what people upload from their phones and what an attacker would send:
random bytes, format signatures followed by garbage, truncated and corrupted PNG /
JPEG / GIF / BMP / TIFF / WebP, valid images under the wrong extension, formats
outside the allow list, 0x0, 1xN and other degenerate sizes, headers that claim
30000x30000 and more, palette images with transparency, 1-bit, 16-bit and 32-bit
grayscale, float TIFF, CMYK, multi-frame GIF / WebP / TIFF / APNG, all eight EXIF
orientations, broken EXIF and text-chunk bombs.

Each file says what ``explorer.data.decode_image`` must do with it:

- ``refuse``: raise ``ImageError`` with a one-line message;
- ``image``: return an RGB image of ``size``; when ``expected`` is given its pixels
  (computed here from the source arrays, not by PIL's conversions) must match within
  ``tol`` (max abs difference; ``mean_tol`` on the mean for lossy formats);
- ``either``: refuse, or return an RGB image of ``size`` (a truncated PNG that lost
  only its end chunk may still decode completely).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

W, H = 48, 32  # the reference size: not square, so rotations show
REFUSE, IMAGE, EITHER = "refuse", "image", "either"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    category: str
    expect: str
    size: Optional[tuple[int, int]] = None  # (width, height) of the decoded image
    expected: Optional[np.ndarray] = None  # [H, W, 3] uint8
    tol: int = 0
    mean_tol: Optional[float] = None
    message: Optional[str] = None  # a word the refusal must contain

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


# --- sources --------------------------------------------------------------------------

def noise_rgb(w: int = W, h: int = H, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def blocky_rgb(w: int = W, h: int = H, block: int = 16, seed: int = 1) -> np.ndarray:
    """Uniform 16x16 blocks of distinct colours: survives JPEG almost unchanged, shows every rotation."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (h // block + 1, w // block + 1, 3))
    a = np.repeat(np.repeat(colours, block, 0), block, 1)[:h, :w]
    return a.astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gray3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2).astype(np.uint8)


def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.clip(np.rint(rgb.astype(np.float64) * a + 255.0 * (1.0 - a)), 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_raw(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None = None,
            extra_chunks: tuple[bytes, ...] = ()) -> bytes:
    """A PNG written by hand: IHDR as given, extra chunks, then IDAT of ``rows`` (filter byte included)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(extra_chunks)
    if rows is not None:
        out += png_chunk(b"IDAT", zlib.compress(rows))
    return out + png_chunk(b"IEND", b"")


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` and holds one tiny IDAT: costs nothing unless decoded."""
    return png_raw(width, height, 8, 0, rows=b"\x00" * 9)


# --- the corpus -----------------------------------------------------------------------

FORMATS = {  # format -> (extension, save kwargs, lossless)
    "PNG": (".png", {}, True),
    "JPEG": (".jpg", {"quality": 95}, False),
    "GIF": (".gif", {}, True),
    "BMP": (".bmp", {}, True),
    "TIFF": (".tiff", {}, True),
    "WEBP": (".webp", {"lossless": True}, True),
}


def _valid(fmt: str, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A valid 48x32 file of ``fmt`` and the RGB pixels it holds."""
    if fmt == "GIF":  # a palette of 6 colours, so the GIF is exact
        a = blocky_rgb(seed=seed)
        img = Image.fromarray(a).quantize(colors=8, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        return encode(img, "GIF"), np.asarray(img.convert("RGB"))
    a = blocky_rgb(seed=seed) if fmt == "JPEG" else noise_rgb(seed=seed)
    return encode(Image.fromarray(a), fmt, **FORMATS[fmt][1]), a


def _image_case(name: str, data: bytes, category: str, expected: np.ndarray, lossless: bool = True) -> Case:
    h, w = expected.shape[:2]
    return Case(name, data, category, IMAGE, (w, h), expected, tol=0 if lossless else 255,
                mean_tol=None if lossless else 6.0)


def random_bytes(rng) -> list[Case]:
    exts = [".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tiff", ".txt", "", ".exe", ".heic", ".svg"]
    lengths = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 64, 100, 255, 256, 511, 1000, 1024, 4096, 65536]
    cases = []
    for i in range(40):
        n = lengths[i % len(lengths)] if i < len(lengths) else int(rng.integers(1, 20000))
        cases.append(Case(f"random{i}{exts[i % len(exts)]}", rng.bytes(n), "random bytes", REFUSE))
    cases.append(Case("zeros.png", b"\x00" * 5000, "random bytes", REFUSE))
    cases.append(Case("ones.jpg", b"\xff" * 5000, "random bytes", REFUSE))
    return cases


SIGNATURES = {
    "PNG": b"\x89PNG\r\n\x1a\n",
    "JPEG": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "GIF": b"GIF89a",
    "BMP": b"BM",
    "TIFF-II": b"II*\x00",
    "TIFF-MM": b"MM\x00*",
    "WEBP": b"RIFF\x00\x10\x00\x00WEBPVP8 ",
}


def signature_then_garbage(rng) -> list[Case]:
    cases = []
    for fmt, sig in SIGNATURES.items():
        for n in (0, 4, 24, 300, 5000):
            cases.append(Case(f"{fmt.lower()}-garbage-{n}", sig + rng.bytes(n), "signature + garbage", EITHER))
    return cases


def truncated() -> list[Case]:
    cases = []
    for fmt in FORMATS:
        data, a = _valid(fmt)
        for frac in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
            cut = max(1, int(len(data) * frac))
            cases.append(Case(f"truncated-{frac}{FORMATS[fmt][0]}", data[:cut], "truncated", EITHER,
                              (a.shape[1], a.shape[0])))
        cases.append(Case(f"truncated-last-byte{FORMATS[fmt][0]}", data[:-1], "truncated", EITHER,
                          (a.shape[1], a.shape[0])))
    return cases


def corrupted(rng) -> list[Case]:
    cases = []
    for fmt in FORMATS:
        data, a = _valid(fmt, seed=2)
        for k in range(4):
            b = bytearray(data)
            start = min(len(b) - 1, 40)
            for pos in rng.integers(start, len(b), 8 * (k + 1)):
                b[pos] ^= int(rng.integers(1, 256))
            cases.append(Case(f"corrupted-{k}{FORMATS[fmt][0]}", bytes(b), "corrupted", EITHER,
                              (a.shape[1], a.shape[0])))
    return cases


def wrong_extension() -> list[Case]:
    names = {"PNG": ["photo.jpg", "image", "cat.png.exe", "../../etc/passwd"],
             "JPEG": ["photo.png", "notes.txt"], "GIF": ["anim.webp", "x.GIF.txt"],
             "BMP": ["setup.exe"], "TIFF": ["scan.jpeg"], "WEBP": ["photo.gif", "émoji 📷 name.heic"]}
    cases = []
    for fmt, ns in names.items():
        data, a = _valid(fmt, seed=3)
        for n in ns:
            cases.append(_image_case(n, data, "wrong extension", a, lossless=FORMATS[fmt][2]))
    return cases


def outside_the_allow_list() -> list[Case]:
    a = noise_rgb(seed=4)
    img = Image.fromarray(a)
    cases = []
    for fmt, ext, kw in [("ICO", ".ico", {}), ("PCX", ".pcx", {}), ("PPM", ".ppm", {}), ("TGA", ".tga", {}),
                         ("SGI", ".sgi", {}), ("PDF", ".pdf", {}), ("IM", ".im", {}), ("XBM", ".xbm", {}),
                         ("DIB", ".dib", {}), ("JPEG2000", ".jp2", {}), ("QOI", ".qoi", {}), ("DDS", ".dds", {})]:
        src = img.convert("1") if fmt == "XBM" else img
        try:
            data = encode(src, fmt, **kw)
        except (KeyError, OSError, ValueError):  # an encoder this Pillow lacks
            continue
        cases.append(Case(f"valid{ext}", data, "format outside the allow list", REFUSE))
    texts = {"drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="30000" height="30000">'
                            b'<rect width="100%" height="100%"/></svg>',
             "page.png": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
             "figure.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 48 32\nshowpage\n",
             "archive.png": b"PK\x03\x04" + zlib.compress(encode(img, "PNG")),
             "script.jpg": b"#!/bin/sh\nrm -rf /\n",
             "pickle.png": b"\x80\x04\x95" + b"cos\nsystem\n(S'touch /tmp/pwned'\ntR." }
    for name, data in texts.items():
        cases.append(Case(name, data, "format outside the allow list", REFUSE))
    return cases


def degenerate_sizes() -> list[Case]:
    cases = [Case("zero.png", png_header(0, 0), "degenerate size", REFUSE, message="0x0"),
             Case("zero-width.png", png_header(0, 10), "degenerate size", REFUSE),
             Case("zero-height.png", png_header(10, 0), "degenerate size", REFUSE)]
    for w, h in [(1, 1), (1, 100), (100, 1), (1, 5000), (5000, 1), (7, 7), (7, 100), (100, 7)]:
        a = noise_rgb(w, h, seed=w * 7 + h)
        for fmt in ("PNG", "GIF", "BMP", "TIFF", "WEBP"):
            if fmt == "WEBP" and max(w, h) > 16383:
                continue
            cases.append(Case(f"{w}x{h}{FORMATS[fmt][0]}", encode(Image.fromarray(a), fmt, **FORMATS[fmt][1]),
                              "degenerate size", REFUSE, message="at least"))
    for w, h in [(8, 8), (8, 1000), (1000, 8)]:  # the smallest accepted sides
        a = noise_rgb(w, h, seed=w + h)
        cases.append(_image_case(f"{w}x{h}.png", encode(Image.fromarray(a), "PNG"), "degenerate size", a))
    return cases


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.fromarray(blocky_rgb()), "JPEG", quality=90))
    i = 2
    while i < len(data):  # patch the SOF0 frame header's height and width
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            break
        i += 2 + length
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (16, 16)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    j = data.index(b"\x2c")  # the image descriptor
    data[j + 5:j + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _tiff_with_size(width: int, height: int) -> bytes:
    data = encode(Image.new("L", (16, 16)), "TIFF")
    b = bytearray(data)
    ifd = struct.unpack("<I", b[4:8])[0]
    n = struct.unpack("<H", b[ifd:ifd + 2])[0]
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack("<HH", b[e:e + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            b[e + 2:e + 12] = struct.pack("<HII", 4, 1, value)  # LONG
    return bytes(b)


def _webp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGBA", (16, 16), (1, 2, 3, 128)), "WEBP", lossless=True))
    if data[12:16] == b"VP8X":
        data[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    else:  # VP8L: 14-bit width-1 and height-1 after the signature byte
        bits = (width - 1) | ((height - 1) << 14) | (int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1))
        data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def bombs() -> list[Case]:
    cases = []
    for w, h in [(30000, 30000), (65535, 65535), (100000, 100000), (2**31 - 1, 1), (1, 2**31 - 1),
                 (6325, 6325), (40_000_001, 1)]:
        cases.append(Case(f"bomb-{w}x{h}.png", png_header(w, h), "decompression bomb header", REFUSE, message="MP"))
    cases.append(Case("bomb-30000x30000.jpg", _jpeg_with_size(30000, 30000), "decompression bomb header", REFUSE,
                      message="MP"))
    cases.append(Case("bomb-65535x65535.jpg", _jpeg_with_size(65535, 65535), "decompression bomb header", REFUSE,
                      message="MP"))
    cases.append(Case("bomb-30000x30000.gif", _gif_with_size(30000, 30000), "decompression bomb header", REFUSE))
    cases.append(Case("bomb-65535x65535.gif", _gif_with_size(65535, 65535), "decompression bomb header", REFUSE))
    cases.append(Case("bomb-30000x30000.bmp", _bmp_with_size(30000, 30000), "decompression bomb header", REFUSE))
    cases.append(Case("bomb-30000x30000.tiff", _tiff_with_size(30000, 30000), "decompression bomb header", REFUSE))
    cases.append(Case("bomb-16384x16384.webp", _webp_with_size(16384, 16384), "decompression bomb header", REFUSE))
    # a real zlib bomb: 10000x10000 of zeros, 100 MP in ~100 KB
    z = zlib.compressobj(9)
    row_block = b"\x00" * (10001 * 1000)
    idat = b"".join(z.compress(row_block) for _ in range(10)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", 10000, 10000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    cases.append(Case("zlib-bomb-10000x10000.png", data, "decompression bomb header", REFUSE, message="MP"))
    return cases


def modes() -> list[Case]:
    cases = []
    rng = np.random.default_rng(5)
    # palette with one transparent index (tRNS), and with partial alpha per entry
    idx = rng.integers(0, 16, (H, W)).astype(np.uint8)
    palette = rng.integers(0, 256, (16, 3)).astype(np.uint8)
    p = Image.fromarray(idx, "P")
    p.putpalette(palette.ravel().tolist())
    rgb = palette[idx]
    alpha = np.where(idx == 3, 0, 255).astype(np.uint8)
    cases.append(_image_case("palette-transparent-index.png", encode(p, "PNG", transparency=3), "palette + transparency",
                             on_white(rgb, alpha)))
    cases.append(_image_case("palette-transparent-index.gif", encode(p, "GIF", transparency=3),
                             "palette + transparency", on_white(rgb, alpha)))
    entry_alpha = rng.integers(0, 256, 16).astype(np.uint8)
    cases.append(_image_case("palette-partial-alpha.png", encode(p, "PNG", transparency=entry_alpha.tobytes()),
                             "palette + transparency", on_white(rgb, entry_alpha[idx])))
    cases.append(_image_case("palette-opaque.bmp", encode(p, "BMP"), "palette", rgb))
    cases.append(_image_case("palette-opaque.tiff", encode(p, "TIFF"), "palette", rgb))
    # alpha channels
    a = noise_rgb(seed=6)
    al = rng.integers(0, 256, (H, W)).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([a, al]), "RGBA")
    for fmt, kw in [("PNG", {}), ("TIFF", {}), ("WEBP", {"lossless": True, "exact": True})]:
        cases.append(_image_case(f"rgba{FORMATS[fmt][0]}", encode(rgba, fmt, **kw), "alpha", on_white(a, al)))
    g = rng.integers(0, 256, (H, W)).astype(np.uint8)
    la = Image.fromarray(np.dstack([g, al]), "LA")
    cases.append(_image_case("la.png", encode(la, "PNG"), "alpha", on_white(gray3(g), al)))
    cases.append(_image_case("la.tiff", encode(la, "TIFF"), "alpha", on_white(gray3(g), al)))
    # 1-bit
    bits = rng.integers(0, 2, (H, W)).astype(bool)
    one = Image.fromarray(bits)
    for fmt in ("PNG", "TIFF", "BMP", "GIF"):
        cases.append(_image_case(f"1bit{FORMATS[fmt][0]}", encode(one, fmt), "1-bit", gray3(bits * 255)))
    cases.append(_image_case("1bit-g4.tiff", encode(one, "TIFF", compression="group4"), "1-bit", gray3(bits * 255)))
    # 8-bit grayscale in every format
    for fmt in ("PNG", "GIF", "BMP", "TIFF", "WEBP"):
        cases.append(_image_case(f"gray{FORMATS[fmt][0]}", encode(Image.fromarray(g), fmt, **FORMATS[fmt][1]),
                                 "grayscale", gray3(g)))
    # 16-bit grayscale (PNG and TIFF), 16-bit RGB (PNG), 32-bit integer and float TIFF
    g16 = rng.integers(0, 65536, (H, W)).astype(np.uint16)
    ref16 = gray3(np.clip(np.rint(g16 / 257.0), 0, 255))
    cases.append(_image_case("gray16.png", encode(Image.fromarray(g16), "PNG"), "16-bit", ref16))
    cases.append(_image_case("gray16.tiff", encode(Image.fromarray(g16), "TIFF"), "16-bit", ref16))
    rgb16 = rng.integers(0, 65536, (H, W, 3)).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rgb16)
    cases.append(Case("rgb48.png", png_raw(W, H, 16, 2, raw), "16-bit", IMAGE, (W, H),
                      (rgb16 >> 8).astype(np.uint8), tol=1))
    g32 = rng.integers(0, 65536, (H, W)).astype(np.int32)
    cases.append(_image_case("gray32.tiff", encode(Image.fromarray(g32, "I"), "TIFF"), "32-bit",
                             gray3(np.clip(np.rint(g32 / 257.0), 0, 255))))
    f = rng.random((H, W)).astype(np.float32)
    cases.append(_image_case("float.tiff", encode(Image.fromarray(f, "F"), "TIFF"), "32-bit",
                             gray3(np.clip(np.rint(f.astype(np.float64) * 255.0), 0, 255))))
    # CMYK: R = 255 (1 - C) (1 - K) per channel, as in print
    cmyk = rng.integers(0, 256, (H, W, 4)).astype(np.uint8)
    c, k = cmyk[..., :3].astype(np.float64), cmyk[..., 3:].astype(np.float64)
    ref = np.clip(np.rint((255.0 - c) * (255.0 - k) / 255.0), 0, 255).astype(np.uint8)
    cases.append(Case("cmyk.tiff", encode(Image.fromarray(cmyk, "CMYK"), "TIFF"), "CMYK", IMAGE, (W, H), ref, tol=1))
    blocks = blocky_rgb(seed=7)
    cmyk_blocks = Image.fromarray(blocks).convert("CMYK")
    cases.append(_image_case("cmyk.jpg", encode(cmyk_blocks, "JPEG", quality=95), "CMYK", blocks, lossless=False))
    # JPEG flavours
    for name, kw in [("baseline.jpg", {}), ("progressive.jpg", {"progressive": True}),
                     ("optimized.jpg", {"optimize": True}), ("444.jpg", {"subsampling": 0}),
                     ("420.jpg", {"subsampling": 2})]:
        cases.append(_image_case(name, encode(Image.fromarray(blocks), "JPEG", quality=95, **kw), "JPEG", blocks,
                                 lossless=False))
    gb = blocks[..., 0]
    cases.append(_image_case("gray.jpg", encode(Image.fromarray(gb), "JPEG", quality=95), "JPEG", gray3(gb),
                             lossless=False))
    cases.append(_image_case("lossy.webp", encode(Image.fromarray(blocks), "WEBP", quality=95), "WebP", blocks,
                             lossless=False))
    # TIFF compressions
    for comp in ("raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"):
        try:
            data = encode(Image.fromarray(a), "TIFF", compression=comp)
        except (OSError, ValueError):
            continue
        cases.append(_image_case(f"{comp}.tiff", data, "TIFF compression", a))
    # metadata: an ICC profile, a big text chunk, a zTXt bomb, many text chunks
    png = encode(Image.fromarray(a), "PNG")
    head, tail = png[:33], png[33:]
    icc = png_chunk(b"iCCP", b"junk profile\x00\x00" + zlib.compress(b"not really an icc profile" * 10))
    cases.append(_image_case("icc.png", head + icc + tail, "metadata", a))
    text = png_chunk(b"tEXt", b"Comment\x00" + b"x" * 500_000)
    cases.append(_image_case("big-text.png", head + text + tail, "metadata", a))
    ztxt = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * 50_000_000, 9))
    cases.append(Case("ztxt-bomb.png", head + ztxt + tail, "metadata", EITHER, (W, H)))
    many = b"".join(png_chunk(b"tEXt", b"k%d\x00v" % i) for i in range(5000))
    cases.append(_image_case("many-text-chunks.png", head + many + tail, "metadata", a))
    return cases


def multi_frame() -> list[Case]:
    frames = [blocky_rgb(seed=s) for s in (10, 11, 12)]
    q = [Image.fromarray(f).quantize(colors=8, dither=Image.Dither.NONE) for f in frames]
    first = np.asarray(q[0].convert("RGB"))
    cases = [_image_case("animated.gif", encode(q[0], "GIF", save_all=True, append_images=q[1:], duration=50, loop=0),
                         "multi-frame", first)]
    ims = [Image.fromarray(f) for f in frames]
    cases.append(_image_case("animated.webp", encode(ims[0], "WEBP", save_all=True, append_images=ims[1:],
                                                     lossless=True, duration=50), "multi-frame", frames[0]))
    cases.append(_image_case("multipage.tiff", encode(ims[0], "TIFF", save_all=True, append_images=ims[1:]),
                             "multi-frame", frames[0]))
    cases.append(_image_case("animated.png", encode(ims[0], "PNG", save_all=True, append_images=ims[1:],
                                                    duration=50), "multi-frame", frames[0]))
    many = [Image.fromarray(blocky_rgb(seed=s)).quantize(colors=4) for s in range(200)]
    cases.append(Case("200-frames.gif", encode(many[0], "GIF", save_all=True, append_images=many[1:], duration=10),
                      "multi-frame", IMAGE, (W, H), np.asarray(many[0].convert("RGB"))))
    return cases


# EXIF orientation -> the displayed image, from the stored one (EXIF 2.3, tag 0x0112)
ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
          8: lambda a: np.rot90(a, 1)}


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def exif_rotations() -> list[Case]:
    stored = blocky_rgb(seed=20)
    noise = noise_rgb(seed=21)
    cases = []
    for o, f in ORIENT.items():
        shown = np.ascontiguousarray(f(stored))
        cases.append(Case(f"exif-{o}.jpg", encode(Image.fromarray(stored), "JPEG", quality=95, exif=_exif(o)),
                          "EXIF orientation", IMAGE, (shown.shape[1], shown.shape[0]), shown, tol=255, mean_tol=6.0))
        exact = np.ascontiguousarray(f(noise))
        cases.append(_image_case(f"exif-{o}.png", encode(Image.fromarray(noise), "PNG", exif=_exif(o)),
                                 "EXIF orientation", exact))
    for o in (0, 9, 255, 65535):  # not an orientation: shown as stored
        cases.append(_image_case(f"exif-bad-{o}.png", encode(Image.fromarray(noise), "PNG", exif=_exif(o)),
                                 "EXIF orientation", noise))
    jpeg = encode(Image.fromarray(stored), "JPEG", quality=95)
    junk = b"\xff\xe1" + struct.pack(">H", 2 + 6 + 64) + b"Exif\x00\x00" + np.random.default_rng(22).bytes(64)
    cases.append(Case("exif-junk.jpg", jpeg[:2] + junk + jpeg[2:], "EXIF orientation", IMAGE, (W, H), stored,
                      tol=255, mean_tol=6.0))
    loop = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x01" + struct.pack(">HHII", 0x8769, 4, 1, 8) + b"\x00\x00\x00\x08"
    cases.append(_image_case("exif-ifd-loop.png", encode(Image.fromarray(noise), "PNG", exif=b"Exif\x00\x00" + loop),
                             "EXIF orientation", noise))
    return cases


def corpus(seed: int = 0) -> list[Case]:
    """Every case, in a fixed order; names are unique within a category."""
    rng = np.random.default_rng(seed)
    cases = (random_bytes(rng) + signature_then_garbage(rng) + truncated() + corrupted(rng) + wrong_extension()
             + outside_the_allow_list() + degenerate_sizes() + bombs() + modes() + multi_frame() + exif_rotations())
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), "duplicate case names"
    return cases


def write(folder, cases: list[Case] | None = None) -> int:
    """Write the corpus as files (``<category>/<name>``, unsafe names made safe) for manual tries."""
    from pathlib import Path

    root = Path(folder)
    cases = corpus() if cases is None else cases
    for i, c in enumerate(cases):
        d = root / c.category.replace(" ", "-")
        d.mkdir(parents=True, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in c.name) or "unnamed"
        (d / f"{i:03d}-{safe}").write_bytes(c.data)
    return len(cases)


if __name__ == "__main__":  # python tests/hostile.py OUT_DIR
    import sys

    print(write(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus"), "files")
