"""helpers.clients: clients from URLs and back, a twin without retries, and URLs fit to print."""

from __future__ import annotations

import pytest
import redis

from helpers.clients import client_from_url, product_version, redact, redis_label, url_of


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("redis://:s3cret@127.0.0.1:6380/0", "redis://***@127.0.0.1:6380/0"),
        ("redis://default:s3cret@redis.example:6379/0", "redis://***@redis.example:6379/0"),
        ("rediss://user:p@ss@host:6380", "rediss://***@host:6380"),
        ("postgresql://workshop:s3cret@127.0.0.1:5432/workshop", "postgresql://***@127.0.0.1:5432/workshop"),
        ("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6380/0"),
        ("postgresql://postgres@127.0.0.1:5433/postgres", "postgresql://postgres@127.0.0.1:5433/postgres"),
        ("/tmp/not-a-url", "/tmp/not-a-url"),
    ],
)
def test_redact_removes_a_password_and_its_user_and_keeps_a_user_alone(url, printed):
    assert redact(url) == printed


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:5432/workshop?user=workshop&password=s3cret",
        "redis://127.0.0.1:6380/0?password=s3cret",
    ],
)
def test_redact_hides_a_password_given_in_the_query_string(url):
    assert "s3cret" not in redact(url)


def test_url_of_gives_back_a_url_that_reaches_the_same_server(r):
    again = client_from_url(url_of(r))
    try:
        r.set("workshop:clients:probe", "here")
        assert again.get("workshop:clients:probe") == "here"  # strings decoded, the same server
    finally:
        again.close()


def test_a_bad_url_is_a_value_error_that_names_the_problem_without_the_password():
    with pytest.raises(ValueError, match="percent-encoded") as raised:
        client_from_url("ftp://user:Qz7a/bWk9@127.0.0.1:6379/0")
    assert "Qz7a" not in str(raised.value) and "bWk9" not in str(raised.value)


def test_redis_label_and_product_version_name_the_server(r):
    info = r.info("server")
    assert redis_label(r) == f"Redis {info['redis_version']}"
    product, version = product_version(r)
    assert (product, version) == (
        ("Valkey", info["valkey_version"]) if "valkey_version" in info else ("Redis", info["redis_version"])
    )
    assert isinstance(r, redis.Redis)
