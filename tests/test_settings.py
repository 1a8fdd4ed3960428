import pytest

from pipeline.settings import MissingSecret, load_settings


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("PSEUDONYM_KEY", "test-key")


def test_no_pseudonym_key_no_run(monkeypatch):
    monkeypatch.delenv("PSEUDONYM_KEY")
    with pytest.raises(MissingSecret, match="PSEUDONYM_KEY"):
        load_settings()


def test_feed_address_and_token_from_an_airflow_connection(monkeypatch):
    monkeypatch.delenv("FEED_URL", raising=False)
    monkeypatch.delenv("FEED_TOKEN", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SKILL_EVALUATION_FEED",
        '{"conn_type": "http", "host": "feed.example", "port": 8443, "schema": "https", '
        '"password": "s3cret"}',
    )
    s = load_settings()
    assert (s.feed_url, s.feed_token) == ("https://feed.example:8443", "s3cret")


def test_environment_takes_precedence_over_the_connection(monkeypatch):
    monkeypatch.setenv("FEED_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("FEED_TOKEN", "from-env")
    monkeypatch.setenv("AIRFLOW_CONN_SKILL_EVALUATION_FEED", '{"host": "http://other", "password": "x"}')
    s = load_settings()
    assert (s.feed_url, s.feed_token) == ("http://127.0.0.1:9", "from-env")


def test_uri_form_connection_through_airflow(monkeypatch):
    monkeypatch.delenv("FEED_URL", raising=False)
    monkeypatch.delenv("FEED_TOKEN", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_SKILL_EVALUATION_FEED", "http://:tok%2Fen@127.0.0.1:8765")
    s = load_settings()
    assert (s.feed_url, s.feed_token) == ("http://127.0.0.1:8765", "tok/en")
