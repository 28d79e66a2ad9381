"""Missing compiled catalogs fail loudly: a system check error, and no letter goes out in
English while it says another language. The catalogs are copied to a temporary LOCALE_PATHS
and broken there; the real files are never touched."""

import os
import shutil
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from campaign import states as host_states
from campaign.models import Host
from letters import batches, catalogs, errors, sending, states
from letters.languages import LANGUAGES, babel_locale
from letters.models import Letter
from tests.letters.helpers import approved_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def locale_copy(tmp_path):
    """A compiled copy of the catalogs, with LOCALE_PATHS pointing at it."""
    copy = tmp_path / "locale"
    shutil.copytree(REPO / "locale", copy, ignore=shutil.ignore_patterns("*.mo"))
    with override_settings(LOCALE_PATHS=[copy]):
        call_command("compile_translations", verbosity=0)
        yield copy


def mo_of(locale: Path, language: str) -> Path:
    return locale / babel_locale(language) / "LC_MESSAGES" / "django.mo"


def test_every_catalog_translates_the_sentinel_message():
    # catalogs.require() relies on it: a catalog that does not translate it reads as missing.
    from babel.messages.pofile import read_po

    for language in LANGUAGES:
        if language == "en":
            continue
        po = mo_of(REPO / "locale", language).with_suffix(".po")
        message = read_po(po.open("rb")).get(catalogs.SENTINEL)
        assert message is not None and message.string not in ("", catalogs.SENTINEL), language


def test_compiled_catalogs_pass_the_check(locale_copy):
    assert catalogs.file_problems() == []
    call_command("check")  # raises SystemCheckError on any error


def test_a_missing_mo_is_a_system_check_error(locale_copy):
    mo_of(locale_copy, "ja").rename(locale_copy / "ja.mo.away")
    with pytest.raises(SystemCheckError, match=r"letters.E001.*catalog for ja missing"):
        call_command("check")
    errors = catalogs.file_problems()
    assert [e.id for e in errors] == ["letters.E001"]
    assert "run manage.py compile_translations" in errors[0].hint


def test_a_mo_older_than_its_po_is_a_system_check_error(locale_copy):
    mo = mo_of(locale_copy, "pt-br")
    # The .po edited after it was compiled (a translator's fix, a pull).
    later = mo.stat().st_mtime + 60
    os.utime(mo.with_suffix(".po"), (later, later))
    assert [(e.id, "pt-br" in e.msg) for e in catalogs.file_problems()] == [
        ("letters.E002", True)]


def test_a_language_without_any_catalog_is_a_system_check_error(locale_copy):
    shutil.rmtree(locale_copy / "ko")
    assert [e.id for e in catalogs.file_problems()] == ["letters.E003"]


def test_compile_translations_runs_although_the_check_fails(tmp_path):
    # A fresh checkout has no .mo at all: the command that makes them must not be stopped
    # by the check that asks for them.
    import subprocess
    import sys

    copy = tmp_path / "locale"
    shutil.copytree(REPO / "locale", copy, ignore=shutil.ignore_patterns("*.mo"))
    script = ("import django, sys; django.setup(); from django.conf import settings; "
              f"settings.LOCALE_PATHS = [{str(copy)!r}]; "
              "from django.core.management import execute_from_command_line as run; "
              "run(['manage.py', sys.argv[1]])")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "campaign.test_settings"}
    check = subprocess.run([sys.executable, "-c", script, "check"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode != 0 and "catalog for ja missing" in check.stderr
    done = subprocess.run([sys.executable, "-c", script, "compile_translations"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"compiled={len(LANGUAGES)}"


@pytest.mark.django_db
def test_a_letter_whose_catalog_is_missing_is_not_sent(
    locale_copy, campaign, bob, rita, finding
):
    finding(email="abuse@isp.example.jp", language="ja", country="JP")
    finding(email="abuse@isp.example.fr", language="fr", country="FR")
    batch = approved_batch(campaign, bob, rita)
    japanese = batch.letters.get(language="ja")
    assert catalogs.SENTINEL not in japanese.body_text  # built while the catalog was there

    # The worker's deployment lost the Japanese catalog after the batch was built.
    mo_of(locale_copy, "ja").unlink()
    with override_settings(LOCALE_PATHS=[locale_copy]):  # a fresh process: catalogs reloaded
        summary = sending.send_batch(batch=batch)

    assert (summary.sent, summary.failed) == (1, 1)
    assert [m.to for m in mail.outbox] == [["abuse@isp.example.fr"]]
    japanese.refresh_from_db()
    # Kept queued, saying why: the fault is the worker's, not the letter's.
    assert japanese.state == states.QUEUED and japanese.claimed_at is None
    assert "catalog for ja missing; run manage.py compile_translations" in japanese.last_error
    host = Host.objects.get(letter_links__letter=japanese)
    assert host.state == host_states.CONTACT_RESOLVED  # not notified: nothing went out

    # compile_translations, then a restarted worker (catalogs reloaded) sends it, once.
    call_command("compile_translations", verbosity=0)
    with override_settings(LOCALE_PATHS=[locale_copy]):
        summary = sending.send_batch(batch=batch)
    assert (summary.sent, summary.failed) == (1, 0)
    assert [m.to for m in mail.outbox][1:] == [["abuse@isp.example.jp"]]
    japanese.refresh_from_db()
    assert japanese.state == states.SENT


@pytest.mark.django_db
def test_a_batch_is_not_built_in_a_language_without_its_catalog(
    locale_copy, campaign, bob, finding
):
    finding(email="abuse@isp.example.jp", language="ja", country="JP")
    mo_of(locale_copy, "ja").unlink()
    with override_settings(LOCALE_PATHS=[locale_copy]):
        with pytest.raises(errors.LetterError, match="catalog for ja missing"):
            batches.build_batch(campaign=campaign, actor=bob)
    assert not Letter.objects.exists()
