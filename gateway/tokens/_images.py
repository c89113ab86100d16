"""Prompt tokens of an image part, from the provider's documented rule.

OpenAI (vision guide, "Calculating costs"): ``detail: "low"`` costs a flat 85 tokens. ``"high"`` (and
``"auto"``, counted as high) first fits the image in 2048x2048, then scales it down so that its shortest side
is at most 768 px, and costs 85 + 170 per 512-px tile. gpt-4o-mini bills 2833 base + 5667 per tile instead.
Models billed by 32-px patches (gpt-4.1-mini/nano, o4-mini) are counted with the tile rule: an
approximation.

Anthropic (vision guide): about width x height / 750 tokens after scaling the long edge to at most
1568 px, at most about 1600 tokens.

The size is read from the image header when the image is inline (a base64 ``data:`` URL of a PNG, GIF,
WebP or JPEG). When it is unknown (a remote URL, another format), a flat estimate is used: 765 tokens for
OpenAI high/auto, the guide's 1024x1024 example (4 tiles), and the 1600-token maximum for Anthropic.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Final

LOW_DETAIL_TOKENS: Final = 85
TILE_TOKENS: Final = 170
UNKNOWN_SIZE_TILES: Final = 4  # the 1024x1024 example of OpenAI's guide: 85 + 4 x 170 = 765 tokens
GPT_4O_MINI_BASE: Final = 2833
GPT_4O_MINI_TILE: Final = 5667
ANTHROPIC_MAX_TOKENS: Final = 1600
ANTHROPIC_MAX_EDGE: Final = 1568

_HEADER_B64_CHARS: Final = 96_000  # enough base64 to reach the frame header of nearly every JPEG


def openai_image_tokens(model: str, detail: object, size: tuple[int, int] | None) -> int:
    """Tokens of one image for an OpenAI model (tile rule), ``size`` being (width, height) if known."""
    base, tile = (LOW_DETAIL_TOKENS, TILE_TOKENS)
    if "gpt-4o-mini" in model:
        base, tile = GPT_4O_MINI_BASE, GPT_4O_MINI_TILE
    if detail == "low":
        return base
    if size is None:
        return base + tile * UNKNOWN_SIZE_TILES
    width, height = float(size[0]), float(size[1])
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = width * scale, height * scale
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = width * scale, height * scale
    return base + tile * math.ceil(width / 512) * math.ceil(height / 512)


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    """Tokens of one image for an Anthropic model: (width x height) / 750 after resizing, at most 1600."""
    if size is None:
        return ANTHROPIC_MAX_TOKENS
    width, height = float(size[0]), float(size[1])
    if max(width, height) > ANTHROPIC_MAX_EDGE:
        scale = ANTHROPIC_MAX_EDGE / max(width, height)
        width, height = width * scale, height * scale
    return min(math.ceil(width * height / 750), ANTHROPIC_MAX_TOKENS)


def image_size(url: object) -> tuple[int, int] | None:
    """(width, height) of an image given as a base64 ``data:`` URL, read from its header; None if unknown."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    comma = url.find(",", 0, 200)
    if comma < 0 or not url[:comma].endswith(";base64"):
        return None
    encoded = url[comma + 1 : comma + 1 + _HEADER_B64_CHARS]
    encoded = encoded[: len(encoded) - len(encoded) % 4]
    try:
        header = base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        return None
    size = _header_size(header)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _header_size(data: bytes) -> tuple[int, int] | None:
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit width-1 and height-1
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: 14-bit width-1 and height-1
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy key frame
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame header
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return int(width), int(height)
        offset += 2 + length
    return None
