"""docker-compose.yml, read as an operator trusts it (no docker daemon needed): valid against the
compose specification's JSON schema (vendored in tests/data, see its README), and keeping the
promises its comments and the README make."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXT = (REPO_ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(TEXT)  # YAML merge keys (`<<: *labelmix`) resolved, as compose resolves them
SERVICES = COMPOSE["services"]
ONE_SHOT = {"migrate"}  # runs to completion before the others start
LONG_RUNNING = sorted(set(SERVICES) - ONE_SHOT)
WORKERS = [  # `celery ... worker ...` (flower is `celery ... flower`)
    name for name, s in SERVICES.items()
    if s.get("command", [])[:1] == ["celery"] and "worker" in s["command"]
]


def schema_errors(document: dict) -> list[str]:
    schema = json.loads((REPO_ROOT / "tests" / "data" / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_validates_against_the_compose_specification():
    assert schema_errors(COMPOSE) == []
    # The schema has teeth: a misspelt key is refused.
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    assert any("helthcheck" in e for e in schema_errors(broken))


def test_every_service_restarts_and_every_long_running_one_has_a_healthcheck():
    assert SERVICES["migrate"]["restart"] == "no"
    for name in LONG_RUNNING:
        service = SERVICES[name]
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_the_healthchecks_ask_what_matters():
    assert "/readyz" in " ".join(SERVICES["api"]["healthcheck"]["test"])  # ready (database, broker, workers)
    assert sorted(WORKERS) == ["worker-callbacks", "worker-gpu0", "worker-studies"]
    for name in WORKERS:
        command, check = SERVICES[name]["command"], " ".join(SERVICES[name]["healthcheck"]["test"])
        node = command[command.index("--hostname") + 1].removesuffix("@%h")
        assert f"inspect ping -d {node}@$$HOSTNAME" in check, (name, check)  # this worker, not any worker


def test_every_queue_the_app_sends_to_has_a_worker_of_its_own():
    from app.queues import CALLBACKS_QUEUE, STUDIES_QUEUE, TRIALS_QUEUE

    consumed = {name: SERVICES[name]["command"][SERVICES[name]["command"].index("-Q") + 1] for name in WORKERS}
    assert sorted(consumed.values()) == sorted([TRIALS_QUEUE, STUDIES_QUEUE, CALLBACKS_QUEUE])
    # Slow receivers hold callback threads only, never those that advance allocations (issue 29).
    assert consumed["worker-callbacks"] == CALLBACKS_QUEUE != STUDIES_QUEUE


def test_only_the_api_is_published_beyond_loopback():
    # The dashboards have no login (issue 29): flower and optuna-dashboard on 127.0.0.1 only.
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            if name != "api":
                assert str(port).startswith("127.0.0.1:"), (name, port)
    assert SERVICES["api"]["ports"] == ["8000:8000"]  # it requires keys (LABELMIX_REQUIRE_API_KEYS)


def test_workers_serve_metrics_on_the_port_they_expose():
    for name in WORKERS:
        service = SERVICES[name]
        port = service["environment"]["LABELMIX_WORKER_METRICS_PORT"]
        assert service["expose"] == [port], name
        # A worker's own environment replaces the shared one: it must still carry the database and broker.
        assert {"LABELMIX_DATABASE_URL", "LABELMIX_BROKER_URL", "HF_HOME"} <= set(service["environment"]), name


def test_caches_are_on_the_volume():
    for name, service in SERVICES.items():
        if service.get("image", "").startswith("labelmix:"):
            cache = next(v.split(":")[1] for v in service["volumes"] if v.startswith("model-cache:"))
            assert service["environment"]["HF_HOME"].startswith(cache + "/"), name


def test_every_image_is_pinned_to_a_version():
    for name, service in SERVICES.items():
        image = service["image"]
        if "build" in service:  # built here from this checkout
            assert image.startswith("labelmix:"), name
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert re.fullmatch(r"v?\d+(\.\d+)+", tag), f"{name}: {image} is not pinned to a version"
    assert SERVICES["postgres"]["image"].startswith("postgres:16.")  # the data volume's major version


def test_no_password_is_written_in_the_file():
    # Every credential in a URL, and every *PASSWORD* / *SECRET* variable, comes from the env file.
    for secret in re.findall(r"://[^:/@\s]+:([^@\s]+)@", TEXT):
        assert secret.startswith("${"), secret
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|TOKEN", key):
                assert str(value).startswith("${"), (name, key)


def test_the_api_and_the_workers_name_one_precision():
    # The API writes the precision into every trial's spec; left to `auto` it would read its own CPU.
    labelmix = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("labelmix:")}
    precisions = {name: (s.get("environment") or {}).get("LABELMIX_PRECISION") for name, s in labelmix.items()
                  if "api" in name or name in WORKERS}
    assert set(precisions) >= {"api", *WORKERS} and len(set(precisions.values())) == 1, precisions
    assert None not in precisions.values()
