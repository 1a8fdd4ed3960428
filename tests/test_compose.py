"""docker-compose.yml checked on paper (no Docker engine runs here): valid against the Compose specification, and
each point that once kept it from starting as written."""

import re
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


def test_image_build_keeps_the_host_venv_and_data_out():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for path in (".venv", "data", "warehouse", "exports", ".git", ".airflow"):
        assert path in ignored, path


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


def test_shared_secrets_logs_and_login(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", env[key]), key  # required, the same in every container
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/auth/")
    for name in AIRFLOW_SERVICES:
        volumes = compose["services"][name]["volumes"]
        assert "airflow-logs:/opt/airflow/logs" in volumes
        assert "airflow-auth:/opt/airflow/auth" in volumes


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
