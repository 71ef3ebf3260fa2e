"""compose.yaml: valid against the Compose Specification's own JSON schema (vendored with its licence in
tests/fixtures/compose-spec/), and the stack the issue asks for — PostgreSQL, two `serve --no-worker`
replicas behind an nginx proxy, two workers, Unleash OSS in the `unleash` profile — with settings switchman
accepts, secrets only from the environment, and enough PostgreSQL connections for every pool."""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import jsonschema
import pytest

from switchman.config import Settings, load_settings
from tests.deploy.files import COMPOSE, COMPOSE_SCHEMA, NGINX_CONF, REPO, compose, interpolated

# A worker process's pool (`switchman worker`: src/switchman/worker/loop.py, open_runtime(pool_size=4));
# every pool may open as many connections again as overflow (src/switchman/db/engine.py).
WORKER_POOL_SIZE = 4
UNLEASH_POOL_MAX = 4  # Unleash's default DATABASE_POOL_MAX
RESERVED = 10  # superuser_reserved_connections (3), start-up migrations, an operator's psql


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return compose()


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / "deploy" / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_yaml_is_valid_against_the_compose_specification(stack: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(stack), key=lambda error: list(error.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_the_schema_check_catches_a_broken_file(stack: dict[str, Any]) -> None:
    broken = copy.deepcopy(stack)
    broken["services"]["serve"]["deploy"]["replicas"] = "two"
    broken["services"]["worker"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["proxy"]["restart_policy"] = "always"  # not a service property
    assert len(list(_validator().iter_errors(broken))) == 3


def test_the_stack_has_its_services(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(services) == {"postgres", "serve", "worker", "proxy", "unleash"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])

    serve, worker = services["serve"], services["worker"]
    assert serve["command"][0] == "serve" and "--no-worker" in serve["command"]
    assert serve["deploy"]["replicas"] == 2
    assert "healthcheck" not in serve  # the image's HEALTHCHECK on /health applies
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["environment"]["SWITCHMAN_WORKER_METRICS_PORT"] == "9464"  # its /metrics and /health
    assert "SWITCHMAN_WORKER_METRICS_PORT" in " ".join(worker["healthcheck"]["test"])
    for service in (serve, worker):
        assert service["build"] == "." and service["image"] == serve["image"]  # this repository's image
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"

    proxy = services["proxy"]
    assert re.match(r"(nginx|haproxy):", proxy["image"])
    assert proxy["depends_on"]["serve"]["condition"] == "service_healthy"
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]

    # Unleash only in its profile; everything else always
    assert services["unleash"]["profiles"] == ["unleash"]
    assert services["unleash"]["image"].startswith("unleashorg/unleash-server:")
    assert [name for name, service in services.items() if "profiles" in service] == ["unleash"]
    assert serve["depends_on"]["unleash"] == {"condition": "service_healthy", "required": False}


def test_the_proxy_sends_to_the_serve_replicas(stack: dict[str, Any]) -> None:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    upstream = re.search(r"upstream switchman \{(.*?)\}", conf, re.S)
    assert upstream is not None
    assert re.search(r"server serve:4242 resolve\b", upstream.group(1))
    assert "proxy_pass http://switchman;" in conf
    [listen] = re.findall(r"listen (\d+);", conf)
    [published] = stack["services"]["proxy"]["ports"]
    assert published.endswith(f":{listen}")
    assert f"http://127.0.0.1:{listen}/health" in stack["services"]["proxy"]["healthcheck"]["test"]
    assert conf.count("{") == conf.count("}")


def _environment(stack: dict[str, Any], service: str, env: dict[str, str]) -> dict[str, str]:
    return {
        name: interpolated(str(value), env)
        for name, value in stack["services"][service]["environment"].items()
    }


@pytest.mark.parametrize("service", ["serve", "worker"])
def test_switchman_accepts_the_settings_the_stack_gives_it(
    stack: dict[str, Any], env_example: dict[str, str], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = _environment(stack, service, env_example)
    known = {f"SWITCHMAN_{name.upper()}" for name in Settings.model_fields}
    assert sorted(set(environment) - known) == []  # no misspelt setting
    for name in [name for name in os.environ if name.startswith("SWITCHMAN_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO / "deploy")  # no .env of a developer's is read
    settings = load_settings()
    assert settings.async_database_url.get_backend_name() == "postgresql"
    assert settings.async_database_url.host == "postgres"
    assert settings.migrate_on_start
    # and with the profile's backend switched on, too
    monkeypatch.setenv("SWITCHMAN_FLAG_BACKEND", "unleash")
    monkeypatch.setenv("SWITCHMAN_UNLEASH_API_TOKEN", "*:*.unleash-admin-secret")
    assert load_settings().unleash_url == "http://unleash:4242"


def test_secrets_come_only_from_the_environment(stack: dict[str, Any]) -> None:
    secret = re.compile(r"TOKEN|SECRET|PASSWORD|_KEY$")
    for name, service in stack["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if secret.search(variable):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}", str(value)), (name, variable, value)
            assert not re.search(r"://[^:/@\s]+:(?!\$\{)[^@\s]+@", str(value)), (name, variable)
    text = COMPOSE.read_text(encoding="utf-8")
    assert "*:*." not in text


def test_the_stack_refuses_to_start_without_its_secrets(
    stack: dict[str, Any], env_example: dict[str, str]
) -> None:
    for missing in ("POSTGRES_PASSWORD", "SWITCHMAN_INIT_ADMIN_API_TOKENS"):
        env = {name: value for name, value in env_example.items() if name != missing}
        with pytest.raises(KeyError, match=missing):
            _environment(stack, "serve", env)


def test_postgres_allows_every_pool_at_full_overflow(
    stack: dict[str, Any], env_example: dict[str, str]
) -> None:
    services = stack["services"]
    command = services["postgres"]["command"]
    [max_connections] = [int(arg.split("=")[1]) for arg in command if arg.startswith("max_connections=")]
    pool = int(_environment(stack, "serve", env_example)["SWITCHMAN_DATABASE_POOL_SIZE"])
    needed = (
        services["serve"]["deploy"]["replicas"] * 2 * pool
        + services["worker"]["deploy"]["replicas"] * 2 * WORKER_POOL_SIZE
        + UNLEASH_POOL_MAX
        + RESERVED
    )
    assert needed <= max_connections, (
        f"{needed} connections may be opened, PostgreSQL allows {max_connections}"
    )


def test_unleash_and_switchman_share_one_admin_token(stack: dict[str, Any]) -> None:
    services = stack["services"]
    token = services["serve"]["environment"]["SWITCHMAN_UNLEASH_API_TOKEN"]
    assert token == services["unleash"]["environment"]["INIT_ADMIN_API_TOKENS"]
    assert "unleash" in services["unleash"]["environment"]["DATABASE_URL"].rsplit("/", 1)[1]
    init = (REPO / "deploy" / "postgres-init" / "10-unleash-database.sql").read_text(encoding="utf-8")
    assert "CREATE DATABASE unleash;" in init
