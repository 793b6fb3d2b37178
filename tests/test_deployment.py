"""The production shape in docker-compose.yml is accepted by the compose tool and names every
process of the design: postgres, redis, web (gunicorn), worker and beat."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import service_missing

REPO = Path(__file__).resolve().parents[1]


def test_docker_compose_config_accepts_the_production_file() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        service_missing("docker-compose (Debian package docker-compose) validates the file")
        return
    checked = subprocess.run(  # noqa: S603 - fixed tool, our file
        [tool, "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    services = yaml.safe_load(checked.stdout)["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "crm.celery_app", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "crm.celery_app", "beat"]
    for name in ("migrate", "web", "worker", "beat"):
        environment = services[name]["environment"]
        # Production never falls back to an embedded database inside a container.
        assert environment["CRM_EMBEDDED_SERVICES"] == "0"
        assert environment["CRM_PRODUCTION"] == "1"
        assert environment["DATABASE_URL"].startswith("postgresql://crm:")
