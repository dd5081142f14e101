"""Token estimates and costs. Prices come from settings; only the provider's pixel tables and
the token formula (reference sections 11 and 13) live here, because they are facts of how the
provider counts, not commercial terms.

The bill is whatever `usage.completion_tokens` says; the formula is the pre-submission
estimate shown to the user and recorded beside the billed figure.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

FPS = 24

# (resolution, ratio) -> (width, height)
PIXELS_V10: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (864, 480),
    ("480p", "4:3"): (736, 544),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (544, 736),
    ("480p", "9:16"): (480, 864),
    ("480p", "21:9"): (960, 416),
    ("720p", "16:9"): (1248, 704),
    ("720p", "4:3"): (1120, 832),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (832, 1120),
    ("720p", "9:16"): (704, 1248),
    ("720p", "21:9"): (1504, 640),
    ("1080p", "16:9"): (1920, 1088),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1088, 1920),
    ("1080p", "21:9"): (2176, 928),
}
PIXELS_V15: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (864, 496),
    ("480p", "4:3"): (752, 560),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (560, 752),
    ("480p", "9:16"): (496, 864),
    ("480p", "21:9"): (992, 432),
    ("720p", "16:9"): (1280, 720),
    ("720p", "4:3"): (1112, 834),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (834, 1112),
    ("720p", "9:16"): (720, 1280),
    ("720p", "21:9"): (1470, 630),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1080, 1920),
    ("1080p", "21:9"): (2206, 946),
}
TABLES = {"v10": PIXELS_V10, "v15": PIXELS_V15}


def frame_size(table: str, resolution: str, ratio: str) -> tuple[int, int]:
    """Output pixel size; `adaptive` is estimated as 16:9 (the provider reports its choice)."""
    key = (resolution, "16:9" if ratio == "adaptive" else ratio)
    return TABLES[table][key]


def estimate_tokens(
    table: str, resolution: str, ratio: str, seconds: int, input_video_seconds: float = 0.0
) -> int:
    """tokens = (input video s + output s) x W x H x 24 / 1024 (reference 11.1)."""
    width, height = frame_size(table, resolution, ratio)
    total_seconds = Decimal(str(seconds)) + Decimal(str(input_video_seconds))
    return int(total_seconds * width * height * FPS / 1024)


def cost(tokens: int, price_per_million: float, tier_factor: float = 1.0) -> float:
    """Cost in the route's currency, rounded to 1e-6 (ledger precision)."""
    value = Decimal(tokens) * Decimal(str(price_per_million)) * Decimal(str(tier_factor))
    value = value / Decimal(1_000_000)
    return float(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))
