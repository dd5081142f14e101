"""Callback tokens: round trip, and every forgery refused."""

import pytest

from seedance_pipeline.core.callback_token import InvalidToken, callback_url, make_token, read_token

SECRET = b"test-secret-0123456789"


def test_round_trip() -> None:
    token = make_token("job-abc-0", 3, SECRET)
    target = read_token(token, SECRET)
    assert (target.job_id, target.submit_no) == ("job-abc-0", 3)


def test_url_shape() -> None:
    url = callback_url("http://hooks.local/", "job-1", 1, SECRET)
    assert url.startswith("http://hooks.local/callbacks/")
    assert SECRET.decode() not in url


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t + "x",
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "A" + t[1:],
        lambda t: t.replace(".", ""),
        lambda t: "",
        lambda t: "..",
        lambda t: t.split(".")[0] + "." + "A" * 43,
        lambda t: "x" * 1000,
    ],
)
def test_forgeries_refused(mutate) -> None:
    token = make_token("job-abc-0", 1, SECRET)
    with pytest.raises(InvalidToken):
        read_token(mutate(token), SECRET)


def test_other_secret_refused() -> None:
    with pytest.raises(InvalidToken):
        read_token(make_token("job-1", 1, b"another-secret"), SECRET)


def test_another_jobs_token_names_that_job_only() -> None:
    """A token can't be re-pointed: swapping payloads between tokens breaks the MAC."""
    a = make_token("job-a", 1, SECRET)
    b = make_token("job-b", 1, SECRET)
    with pytest.raises(InvalidToken):
        read_token(a.split(".")[0] + "." + b.split(".")[1], SECRET)


@pytest.mark.parametrize("token", ["é.abc", "job\n.x", "\u202e" * 10])
def test_non_ascii_tokens_are_invalid_not_crashes(token: str) -> None:
    with pytest.raises(InvalidToken):
        read_token(token, SECRET)


def test_trailing_newline_job_id_refused() -> None:
    with pytest.raises(ValueError):
        make_token("abc\n", 1, SECRET)
