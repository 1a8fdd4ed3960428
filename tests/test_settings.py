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


def test_the_province_is_the_seeds_one_province_level_code_for_the_pipeline_and_superset(
    tmp_path, monkeypatch
):
    """The province's code has one owner, the seed supervising_centres: the pipeline reads it from there, and
    bi/access.py (in Superset's image, without the pipeline) finds the same row by the same rule."""
    import importlib.util
    import sys

    from pipeline.settings import PROJECT_ROOT, SUPERVISING_CENTRES_SEED, is_province_code, province_code

    spec = importlib.util.spec_from_file_location("bi_access", PROJECT_ROOT / "bi" / "access.py")
    assert spec is not None
    assert spec.loader is not None
    access = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, access)  # its dataclasses look their module up there
    spec.loader.exec_module(access)
    assert province_code() == "350000"
    assert [c.code for c in access.read_centres(SUPERVISING_CENTRES_SEED) if c.is_province] == [
        province_code()
    ]
    for code in ("350000", "350100", "PT", "35000", "3500001", "110000"):
        assert access.is_province_code(code) == is_province_code(code)
    two = tmp_path / "two_provinces.csv"
    two.write_text(
        "supervising_centre,supervising_centre_zh,city_zh\n350000,a,b\n110000,c,d\n", encoding="utf-8"
    )
    with pytest.raises(RuntimeError, match="one province-level"):
        province_code(two)
