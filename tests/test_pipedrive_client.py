"""The official Pipedrive Node client (npm `pipedrive`, pinned in tests/node/package.json)
works against our API: the journey of the CRM core issue, through a real HTTP server.

The client is installed once into a cache folder outside the checkout (CRM_NODE_CACHE,
default ~/.cache/crm-tests/node) and reinstalled only when the lock file changes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from crm import services
from tests.conftest import PASSWORD, service_missing

NODE_DIR = Path(__file__).resolve().parent / "node"


def _installed_client() -> Path:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        service_missing("node and npm (Debian packages nodejs, npm) run the Pipedrive client")
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("CRM_NODE_CACHE", Path.home() / ".cache" / "crm-tests" / "node"))
    stamp = cache / ".lock-sha256"
    digest = hashlib.sha256(lock).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest and (cache / "node_modules").exists()):
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(NODE_DIR / name, cache / name)
        installed = subprocess.run(  # noqa: S603 - npm from PATH, our lock file
            [str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            service_missing(f"npm could not install the Pipedrive client: {installed.stderr}")
        stamp.write_text(digest)
    return cache / "node_modules"


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_official_pipedrive_client_runs_its_journey_against_our_api(live_server) -> None:
    node_modules = _installed_client()
    _company, _admin, token = services.bootstrap_company(
        name="Client Co", admin_email="client@client.test", password=PASSWORD
    )
    run = subprocess.run(  # noqa: S603 - node from PATH, our script
        [str(shutil.which("node")), str(NODE_DIR / "pipedrive_client.cjs")],
        env={
            **os.environ,
            "BASE_URL": live_server.url,
            "API_TOKEN": token,
            "NODE_PATH": str(node_modules),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    failures = [step for step in steps if not step["ok"]]
    assert not failures, f"{failures}\n{run.stderr}"
    assert [step["step"] for step in steps] == [
        "create_organization",
        "create_person",
        "list_persons_paginated",
        "get_person",
        "update_person",
        "create_deal",
        "create_lead",
        "delete_person",
    ]
    by_name = {step["step"]: step for step in steps}
    assert by_name["create_person"]["emails"] == [
        "Client.Test@Example.com",
        "client.home@example.com",
    ]
    assert by_name["update_person"]["job_title"] == "Buyer"
    assert by_name["create_deal"]["currency"] == "EUR"
    assert by_name["create_lead"]["value"] == {"amount": 500, "currency": "EUR"}
    assert run.returncode == 0
