"""Settings from the environment: strict helpers, mail URLs, production checks, and the
embedded default (an embedded PostgreSQL under var/ + a broker that needs no server) driven
through real subprocesses.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaign.env import email_settings_from_url, env_bool, env_float, env_list
from tests.conftest import FEEDS, REPO

# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", " on ", "yes"])
def test_env_bool_reads_true_words(monkeypatch, raw):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG") is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_env_bool_reads_false_words(monkeypatch, raw):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", default=True) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "enabled", "0n"])
def test_env_bool_raises_on_junk_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"FLAG={raw!r} is not a boolean"):
        env_bool("FLAG")


def test_env_bool_falls_back_to_the_default_only_when_unset(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env_bool("FLAG", default=True) is True
    assert env_bool("FLAG") is False


def test_env_float_and_list(monkeypatch):
    monkeypatch.setenv("NUM", "2.5")
    monkeypatch.setenv("LIST", " 127.0.0.0/8, ,::1/128,")
    assert env_float("NUM", 1.0) == 2.5
    assert env_list("LIST") == ["127.0.0.0/8", "::1/128"]
    monkeypatch.setenv("NUM", "")
    assert env_float("NUM", 1.0) == 1.0
    for junk in ("five", "-1", "0"):
        monkeypatch.setenv("NUM", junk)
        with pytest.raises(ImproperlyConfigured, match="NUM="):
            env_float("NUM", 1.0)


# --- EMAIL_URL ----------------------------------------------------------------------------


def test_console_mail_url():
    assert email_settings_from_url("console:") == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def test_plain_smtp_url():
    config = email_settings_from_url("smtp://mail.example:2525")
    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (config["EMAIL_HOST"], config["EMAIL_PORT"]) == ("mail.example", 2525)
    assert (config["EMAIL_USE_TLS"], config["EMAIL_USE_SSL"]) == (False, False)
    assert (config["EMAIL_HOST_USER"], config["EMAIL_HOST_PASSWORD"]) == ("", "")


def test_smtp_defaults_to_port_25_and_smtps_to_465():
    assert email_settings_from_url("smtp://mail.example")["EMAIL_PORT"] == 25
    smtps = email_settings_from_url("smtps://mail.example")
    assert (smtps["EMAIL_PORT"], smtps["EMAIL_USE_SSL"], smtps["EMAIL_USE_TLS"]) == (
        465, True, False)


def test_smtp_tls_url_with_escaped_credentials():
    config = email_settings_from_url("smtp+tls://alerts%40ftc.example:p%40ss%3Aword@mx.example:587")
    assert (config["EMAIL_HOST"], config["EMAIL_PORT"]) == ("mx.example", 587)
    assert config["EMAIL_HOST_USER"] == "alerts@ftc.example"
    assert config["EMAIL_HOST_PASSWORD"] == "p@ss:word"
    assert (config["EMAIL_USE_TLS"], config["EMAIL_USE_SSL"]) == (True, False)


def test_file_url_writes_an_outbox_folder(tmp_path):
    config = email_settings_from_url(f"file://{tmp_path}/outbox")
    assert config == {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                      "EMAIL_FILE_PATH": f"{tmp_path}/outbox"}


def test_anymail_url_needs_a_backend(monkeypatch):
    monkeypatch.delenv("ANYMAIL_BACKEND", raising=False)
    with pytest.raises(ImproperlyConfigured, match="ANYMAIL_BACKEND"):
        email_settings_from_url("anymail:")
    monkeypatch.setenv("ANYMAIL_BACKEND", "anymail.backends.test.EmailBackend")
    assert email_settings_from_url("anymail:") == {
        "EMAIL_BACKEND": "anymail.backends.test.EmailBackend"}


@pytest.mark.parametrize("url", ["sendmail://localhost", "", "mailto:x@y.example", "smtp://",
                                 "smtp://mail.example:notaport"])
def test_unknown_or_broken_mail_urls_are_improperly_configured(url):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        email_settings_from_url(url)


# --- subprocesses -------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any of the project's settings variables."""
    wanted = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    keep = {k: v for k, v in os.environ.items() if k in wanted}
    return {**keep, "DJANGO_SETTINGS_MODULE": "campaign.settings", **extra}


def manage(*args, env: dict[str, str], stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *map(str, args)], cwd=REPO, env=env, stdin=stdin,
        capture_output=True, text=True, timeout=120,
    )


def settings_dump(env: dict[str, str]) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
        "'name': str(s.DATABASES['default']['NAME']), 'broker': s.CELERY_BROKER_URL, "
        "'email': s.EMAIL_BACKEND, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    return clean_env(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64),
                     ALLOWED_HOSTS="secureyourserver.example", SYS_VAR_DIR=str(tmp_path), **extra)


def test_production_settings_pass_check_deploy_without_warnings(tmp_path):
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNINGS" not in done.stderr


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    done = manage("check", env=env)
    assert done.returncode != 0
    assert "SECRET_KEY must be set unless DEBUG is on" in done.stderr


def test_a_junk_debug_value_stops_the_process(tmp_path):
    done = manage("check", env=clean_env(DEBUG="perhaps", SYS_VAR_DIR=str(tmp_path)))
    assert done.returncode != 0
    assert "DEBUG='perhaps' is not a boolean" in done.stderr


def test_with_nothing_set_it_runs_on_embedded_postgresql_a_serverless_broker_and_console_mail(
        tmp_path):
    config = settings_dump(clean_env(DEBUG="1", SYS_VAR_DIR=str(tmp_path)))
    assert config["engine"] == "campaign.embedded_db"
    assert config["name"] == "sys"
    # Reading the settings starts nothing: the server starts on the first connection.
    assert not (tmp_path / "postgres").exists()
    assert config["broker"] == "filesystem://"
    assert config["email"] == "django.core.mail.backends.console.EmailBackend"
    assert config["hosts"] == ["localhost", "127.0.0.1", "[::1]"]


def test_with_database_and_redis_urls_it_runs_on_postgresql_and_redis(tmp_path):
    config = settings_dump(production_env(
        tmp_path, DATABASE_URL="postgres://sys@db.internal:5432/sys",
        REDIS_URL="redis://redis.internal:6379/0", EMAIL_URL="smtp+tls://u:p@mx.example:587"))
    assert config["engine"] == "django.db.backends.postgresql"
    assert config["broker"] == "redis://redis.internal:6379/0"
    assert config["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert config["debug"] is False


@pytest.mark.parametrize("url", ["sqlite:///var/db.sqlite3", "mysql://u@db/sys"])
def test_a_database_other_than_postgresql_is_refused_at_start_up(tmp_path, url):
    done = manage("check", env=clean_env(DEBUG="1", SYS_VAR_DIR=str(tmp_path), DATABASE_URL=url))
    assert done.returncode != 0
    assert "DATABASE_URL must be a PostgreSQL URL" in done.stderr


def embedded_db(action: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "campaign.embedded_db", action], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A fresh embedded installation (its own PostgreSQL under var/), migrated once, with no
    broker server configured; the server is stopped afterwards."""
    var = tmp_path_factory.mktemp("embedded")
    env = clean_env(DEBUG="1", SYS_VAR_DIR=str(var))
    try:
        done = manage("migrate", "--noinput", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        done = manage("create_campaign", "demo", "--agency", "Demo Agency", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "campaign=demo agency='Demo Agency' kinds=relay,proxy"
        yield var, env
    finally:
        embedded_db("stop", env)


def test_the_embedded_server_is_postgresql_on_a_unix_socket_under_var(embedded):
    var, env = embedded
    status = embedded_db("status", env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("embedded PostgreSQL running on socket ")
    assert (var / "postgres" / "PG_VERSION").read_text().strip() == "18"
    code = ("import django; django.setup(); from django.db import connection as c; "
            "c.ensure_connection(); print(c.vendor, c.pg_version // 10000, "
            "c.settings_dict['HOST'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    vendor, major, host = done.stdout.split()
    assert (vendor, major) == ("postgresql", "18")
    # A socket directory, not a TCP host: nothing listens on a port another server wants.
    assert host.startswith("/") and host in status.stdout


def last_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_embedded_default_imports_feeds_and_shows_a_host(embedded):
    _var, env = embedded
    plain = manage("import_feed", "--campaign", "demo", "--kind", "relay",
                   FEEDS / "plain-ips.txt", env=env)
    assert last_line(plain) == "lines=192 added=146 known=0 rejected=13"
    proxies = manage("import_feed", "--campaign", "demo", FEEDS / "open-proxies.txt", env=env)
    assert last_line(proxies) == "lines=107 added=86 known=3 rejected=11"
    again = manage("import_feed", "--campaign", "demo", FEEDS / "open-proxies.txt", env=env)
    assert last_line(again) == "lines=107 added=0 known=89 rejected=11"

    shown = manage("show_host", "demo", "82.44.79.141", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    host = json.loads(shown.stdout)
    assert (host["ip"], host["state"], host["kinds"], host["ports"]) == (
        "82.44.79.141", "imported", ["relay", "proxy"], [59341])
    assert len(host["sightings"]) == 3

    status = manage("campaign_status", "demo", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["hosts"]["total"] == 146 + 86


def test_the_embedded_default_queues_background_imports_without_a_broker_server(embedded):
    var, env = embedded
    done = manage("import_feed", "--campaign", "demo", "--kind", "relay", "--background",
                  FEEDS / "plain-ips-bom.txt", env=env)
    line = last_line(done)
    assert line.startswith("import=") and " job=" in line
    assert len(line.split(" job=")[1]) == 36  # a task id (UUID)
    queued = list((var / "celery" / "queue").iterdir())
    assert any(path.name.endswith(".msg") for path in queued)


@pytest.mark.parametrize(("args", "message"), [
    (["import_feed", "--campaign", "demo", "--format", "csv", "--kind", "relay",
      FEEDS / "plain-ips.txt"], "CSV header on line 32 has no 'ip' column"),
    (["import_feed", "--campaign", "demo", "--format", "yaml", FEEDS / "plain-ips.txt"],
     "invalid choice: 'yaml'"),
    (["import_feed", "--campaign", "demo", FEEDS / "plain-ips.txt"], "--kind relay or --kind"),
    (["import_feed", "--campaign", "nope", FEEDS / "plain-ips.txt"], "no campaign with slug"),
    (["add_user", "eve", "--role", "analyst"], "set DJANGO_USER_PASSWORD"),
])
def test_command_errors_exit_non_zero_with_a_message_on_stderr(embedded, args, message):
    _var, env = embedded
    done = manage(*args, env=env)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
