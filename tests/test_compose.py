"""docker-compose.yml holds together (no Docker engine here, so its structure is checked, and
the pieces it runs — gunicorn, the Celery app, the web healthcheck — are run for real)."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKERS = tuple(f"worker-{queue}" for queue in ("imports", "probes", "contacts", "mail",
                                                 "default"))
APP_SERVICES = ("web", *WORKERS, "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_it_defines_web_workers_beat_postgres_and_redis(services):
    assert {"web", *WORKERS, "beat", "db", "redis"} <= set(services)
    assert services["db"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"


def test_the_app_services_run_gunicorn_and_celery_from_the_project_image(services):
    assert services["web"]["command"].startswith("gunicorn campaign.wsgi ")
    for name in WORKERS:
        assert services[name]["command"].startswith("celery -A campaign worker"), name
    assert services["beat"]["command"].startswith("celery -A campaign beat")
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", name
    assert (REPO / "Dockerfile").is_file()


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if service.get("restart") == "no":
            continue  # the one-shot migrate job
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_the_app_waits_for_healthy_database_and_broker_and_for_migrations(services):
    for name in APP_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["db"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
    assert "migrate --noinput" in services["migrate"]["command"]


def test_the_app_gets_its_settings_from_the_environment_and_no_secret_is_baked_in(services):
    for name in (*APP_SERVICES, "migrate"):
        env = services[name]["environment"]
        assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"} <= set(env), name
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379/")
        # Required values must come from the operator: ${VAR:?message} fails loudly if unset.
        assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", env["SECRET_KEY"]), name
        assert re.fullmatch(r"\$\{ALLOWED_HOSTS:\?[^}]+\}", env["ALLOWED_HOSTS"]), name
        assert env["DEBUG"] == "0"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_data_lives_in_named_volumes_and_uploads_are_shared_with_the_worker(compose, services):
    declared = set(compose["volumes"])

    def mounts(name):
        return {v.split(":")[0]: v.split(":")[1] for v in services[name].get("volumes", [])}

    assert mounts("db")["pgdata"] == "/var/lib/postgresql/data"
    assert mounts("redis")["redisdata"] == "/data"
    # The web process stores an uploaded feed; the worker must read the same file.
    web, worker = mounts("web"), mounts("worker-imports")
    shared = set(web.items()) & set(worker.items())
    assert shared, "web and worker share no volume"
    var_dir = services["web"]["environment"]["SYS_VAR_DIR"]
    assert (next(iter(shared))[1]) == var_dir
    for name in services:
        assert set(mounts(name)) <= declared, name


def test_a_worker_runs_each_queue_and_its_healthcheck_pings_that_worker(services, settings):
    served = {}
    for name in WORKERS:
        words = services[name]["command"].split()
        queue = words[words.index("-Q") + 1]
        node = words[words.index("-n") + 1]
        served[queue] = name
        assert node == f"{queue}@%h", name
        assert f"-d {queue}@$$HOSTNAME" in services[name]["healthcheck"]["test"][1], name
    assert set(served) == set(settings.TASK_QUEUES)


def test_the_processes_compose_starts_exist_in_the_project():
    import campaign.celery
    import campaign.wsgi

    assert campaign.celery.app.main == "campaign"
    assert callable(campaign.wsgi.application)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_web_healthcheck_passes_against_gunicorn_serving_production_settings(
    services, tmp_path
):
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "campaign.settings",
        "DEBUG": "0",
        "SECRET_KEY": "compose-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "sys.example.org,localhost",
        "SYS_VAR_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [str(REPO / ".venv/bin/gunicorn"), "campaign.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        command = services["web"]["healthcheck"]["test"]
        assert command[:3] == ["CMD", "python", "-c"]
        script = command[3].replace("8000", str(port))
        ok = subprocess.run([sys.executable, "-c", script], env=env, timeout=20)
        assert ok.returncode == 0
        # And it is a real check: a wrong Host header fails it.
        bad = subprocess.run([sys.executable, "-c", script],
                             env={**env, "ALLOWED_HOSTS": "not-allowed.example"}, timeout=20)
        assert bad.returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=10)
