"""Token estimates and costs against hand-computed figures from the reference (sections 11, 13)."""

import pytest

from seedance_pipeline.core.pricing import cost, estimate_tokens, frame_size


class TestTokens:
    @pytest.mark.parametrize(
        ("table", "res", "ratio", "secs", "expected"),
        [
            ("v15", "720p", "16:9", 5, 108_000),  # 1280x720x24x5/1024
            ("v15", "480p", "16:9", 5, 50_220),  # 864x496x24x5/1024
            ("v10", "480p", "16:9", 5, 48_600),  # the 302 table figure
            ("v10", "720p", "16:9", 5, 102_960),
            ("v15", "720p", "9:16", 10, 216_000),
            ("v15", "1080p", "16:9", 5, 243_000),
        ],
    )
    def test_formula(self, table: str, res: str, ratio: str, secs: int, expected: int) -> None:
        assert estimate_tokens(table, res, ratio, secs) == expected

    def test_video_input_seconds_count(self) -> None:
        assert estimate_tokens("v15", "720p", "16:9", 5, input_video_seconds=5) == 216_000

    def test_adaptive_estimates_as_16_9(self) -> None:
        assert frame_size("v15", "720p", "adaptive") == (1280, 720)


class TestCost:
    def test_mini_720p_5s_usd(self) -> None:
        """Mini at $3.5/M: 108,000 tokens = $0.378."""
        assert cost(108_000, 3.5) == pytest.approx(0.378)

    def test_pro_720p_per_second_matches_reference(self) -> None:
        """2.0 at $7/M: 21,600 tok/s = $0.1512/s (reference 11.2)."""
        assert cost(21_600, 7.0) == pytest.approx(0.1512)

    def test_flex_is_half(self) -> None:
        assert cost(108_000, 3.5, 0.5) == pytest.approx(0.189)

    def test_rounded_to_micro(self) -> None:
        assert cost(1, 3.5) == pytest.approx(0.000004)
