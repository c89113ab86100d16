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

Upper bounds (``*_image_bound``, what budgets reserve) use the same rules with the size rounded up, and the
most an image can cost on that model when its size is unknown:

- OpenAI tile models: high detail fits 2048x2048 then 768 px on the short side, so at most 2048x768:
  4 x 2 = 8 tiles (85 + 8 x 170 = 1445; gpt-4o-mini 2833 + 8 x 5667 = 48169). ``low`` is the base alone.
- OpenAI patch models (vision guide: gpt-4.1-mini 1.62, gpt-4.1-nano 2.46, o4-mini 1.72, gpt-5-mini 1.62,
  gpt-5-nano 2.46): 32-px patches, at most 1536, times the multiplier; ``detail`` does not lower it.
  gpt-4.1 is documented at 1 per patch but billed by tiles: the larger of both.
- Another OpenAI model: the largest of those rules but gpt-4o-mini's, 1536 x 2.46 = 3779.
- Anthropic: width x height / 750 after padding to 28 px; at most 5000, the newest models' native
  3.75 megapixels / 750 (earlier models stop at about 1600).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import Final

LOW_DETAIL_TOKENS: Final = 85
TILE_TOKENS: Final = 170
UNKNOWN_SIZE_TILES: Final = 4  # the 1024x1024 example of OpenAI's guide: 85 + 4 x 170 = 765 tokens
GPT_4O_MINI_BASE: Final = 2833
GPT_4O_MINI_TILE: Final = 5667
ANTHROPIC_MAX_TOKENS: Final = 1600
ANTHROPIC_MAX_EDGE: Final = 1568

MAX_TILES: Final = 8  # at most 2048 x 768 after high-detail scaling: 4 x 2 tiles
PATCH_PX: Final = 32
PATCH_CAP: Final = 1536
PATCH_MULTIPLIERS: Final = {  # in percent
    "gpt-4.1": 100,  # documented on patches, billed on tiles (OpenAI community forum): both are bounded
    "gpt-4.1-mini": 162,
    "gpt-4.1-nano": 246,
    "o4-mini": 172,
    "gpt-5-mini": 162,
    "gpt-5-nano": 246,
    "codex-mini-latest": 172,
}
# Models on the tile rule with at most 85 + 170 per tile (o1/o3: 75 + 150, gpt-5: 70 + 140).
TILE_MODELS: Final = frozenset(
    (
        "gpt-4o",
        "chatgpt-4o-latest",
        "gpt-4-turbo",
        "gpt-4.1",
        "gpt-4.5-preview",
        "o1",
        "o1-pro",
        "o3",
        "o3-pro",
        "gpt-5",
        "gpt-5-chat-latest",
    )
)
ANTHROPIC_PAD_PX: Final = 28
ANTHROPIC_PIXELS_PER_TOKEN: Final = 750
ANTHROPIC_MAX_TOKENS_BOUND: Final = 5000

_DATED: Final = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # a snapshot's date: gpt-4o-2024-08-06
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
    return base + tile * _tiles(size)


def openai_image_bound(model: str, detail: object, size: tuple[int, int] | None) -> int:
    """At most the tokens one image costs on the OpenAI model ``model`` (a name from model_name)."""
    family = _DATED.sub("", model)
    if family == "gpt-4o-mini":
        return _tile_bound(GPT_4O_MINI_BASE, GPT_4O_MINI_TILE, detail, size)
    tiled, patched = family in TILE_MODELS, family in PATCH_MULTIPLIERS
    bounds = []
    if tiled or not patched:
        bounds.append(_tile_bound(LOW_DETAIL_TOKENS, TILE_TOKENS, detail, size))
    if patched or not tiled:
        multiplier = PATCH_MULTIPLIERS.get(family, max(PATCH_MULTIPLIERS.values()))
        bounds.append(_patch_bound(size, multiplier))
    return max(bounds)


def anthropic_image_bound(size: tuple[int, int] | None) -> int:
    """At most the tokens one image costs on a Claude model."""
    if size is None:
        return ANTHROPIC_MAX_TOKENS_BOUND
    width = -(-size[0] // ANTHROPIC_PAD_PX) * ANTHROPIC_PAD_PX
    height = -(-size[1] // ANTHROPIC_PAD_PX) * ANTHROPIC_PAD_PX
    return min(-(-width * height // ANTHROPIC_PIXELS_PER_TOKEN), ANTHROPIC_MAX_TOKENS_BOUND)


def _tile_bound(base: int, tile: int, detail: object, size: tuple[int, int] | None) -> int:
    if detail == "low":
        return base
    if size is None:
        return base + tile * MAX_TILES
    return base + tile * _tiles(size)


def _tiles(size: tuple[int, int]) -> int:
    """512-px tiles of an image after OpenAI's high-detail scaling, dimensions rounded up."""
    width, height = float(size[0]), float(size[1])
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = width * scale, height * scale
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = width * scale, height * scale
    return math.ceil(width / 512) * math.ceil(height / 512)


def _patch_bound(size: tuple[int, int] | None, multiplier_percent: int) -> int:
    patches = PATCH_CAP
    if size is not None:
        patches = min(-(-size[0] // PATCH_PX) * -(-size[1] // PATCH_PX), PATCH_CAP)
    return -(-patches * multiplier_percent // 100)


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
