"""Letter templates per agency and per language: an agency's admin edits only that agency's
letters; an admin bound to no agency edits the installation's copy (for agencies without their
own); an edit made in one language leaves every other language its shipped translation; the
editor shows which languages have a copy, and each copy can be reverted (audited)."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from campaign.models import AuditEvent
from letters import batches
from letters.models import LetterTemplate
from letters.rendering import SAMPLE_CONTEXT, TEMPLATE_DIR, LetterRenderer
from tests.conftest import BNETZA, FTC, make_user, two_agency_campaigns
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

A, B = FTC, BNETZA
SUBJECT = "first_notice.subject.txt"
BODY = "first_notice.body.txt"
SHIPPED_GREETING = "{% trans %}Dear network administrator,{% endtrans %}"


@pytest.fixture
def two(db):
    a_campaign, b_campaign = two_agency_campaigns()
    add_finding(a_campaign, email="abuse@isp.us.example", country="US")
    add_finding(a_campaign, email="noc@isp.jp.example", country="JP", language="ja")
    add_finding(b_campaign, email="abuse@isp.de.example", country="DE", language="en")

    class World:
        pass

    w = World()
    w.a_campaign, w.b_campaign = a_campaign, b_campaign
    w.a_admin, w.b_admin = make_user("amy", "admin", A), make_user("bea", "admin", B)
    w.a_staff, w.b_staff = make_user("abe", "staff", A), make_user("ben", "staff", B)
    w.root = make_user("root", "admin")
    return w


def save(client, user, name, source, language=None):
    client.force_login(user)
    data = {"source": source}
    if language:
        data["language"] = language
    return client.post(reverse("template_edit", args=[name]), data)


def subjects(campaign, actor) -> dict[str, str]:
    batch = batches.build_batch(campaign=campaign, actor=actor)
    return dict(batch.letters.values_list("email", "subject"))


def test_an_agency_admins_edit_changes_only_that_agencys_letters(client, two):
    response = save(client, two.a_admin, SUBJECT, "FTC notice: {{ ips }}")
    assert response.status_code == 302
    copy = LetterTemplate.objects.get()
    assert (copy.agency.name, copy.language, copy.updated_by) == (A, "en", two.a_admin)
    event = AuditEvent.objects.get(action="letters.template")
    assert event.data == {"name": SUBJECT, "language": "en", "agency": A}
    a_subjects = subjects(two.a_campaign, two.a_staff)
    assert a_subjects["abuse@isp.us.example"].startswith("FTC notice: 198.51.")
    b_subject = subjects(two.b_campaign, two.b_staff)["abuse@isp.de.example"]
    assert b_subject.startswith(f"{B}: open mail relay or open proxy at ")
    # B's admin sees the shipped template, not A's copy, and previews without it.
    client.force_login(two.b_admin)
    response = client.get(reverse("template_edit", args=[SUBJECT]))
    assert response.context["form"].initial["source"] == (TEMPLATE_DIR / SUBJECT).read_text()
    assert "FTC notice" not in response.content.decode()


def test_the_installation_copy_serves_agencies_without_their_own(client, two):
    assert save(client, two.root, SUBJECT, "Installation notice: {{ ips }}").status_code == 302
    assert save(client, two.a_admin, SUBJECT, "FTC notice: {{ ips }}").status_code == 302
    assert set(LetterTemplate.objects.values_list("agency__name", flat=True)) == {None, A}
    assert subjects(two.b_campaign, two.b_staff)["abuse@isp.de.example"].startswith(
        "Installation notice: ")
    assert subjects(two.a_campaign, two.a_staff)["abuse@isp.us.example"].startswith(
        "FTC notice: ")
    # A's admin starts from the installation's copy in a language A has none of its own.
    client.force_login(two.b_admin)
    response = client.get(reverse("template_edit", args=[SUBJECT]))
    assert response.context["form"].initial["source"] == "Installation notice: {{ ips }}"


def test_editing_the_english_text_keeps_every_other_language_translated(client, two):
    shipped = (TEMPLATE_DIR / BODY).read_text()
    assert SHIPPED_GREETING in shipped
    edited = shipped.replace(SHIPPED_GREETING, "{% trans %}Hello operator,{% endtrans %}")
    assert save(client, two.a_admin, BODY, edited).status_code == 302
    batch = batches.build_batch(campaign=two.a_campaign, actor=two.a_staff)
    english = batch.letters.get(email="abuse@isp.us.example")
    japanese = batch.letters.get(email="noc@isp.jp.example")
    assert "Hello operator," in english.body_text
    assert "Dear network administrator," not in english.body_text
    # The Japanese letter is the shipped, translated one: no English crept in.
    assert "Hello operator" not in japanese.body_text
    assert "Dear network administrator" not in japanese.body_text
    ja_greeting = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "ja").text
    assert ja_greeting.split("\n")[2] in japanese.body_text  # the translated greeting
    # The live preview in Japanese says the same.
    client.force_login(two.a_admin)
    data = client.post(reverse("template_preview", args=[BODY]),
                       {"source": shipped, "language": "ja"}).json()
    assert data["ok"] and "Dear network administrator" not in data["text"]


def test_a_copy_in_japanese_is_written_in_japanese_and_serves_japanese_only(client, two):
    response = save(client, two.a_admin, SUBJECT, "不正中継のお知らせ: {{ ips }}", language="ja")
    assert response.status_code == 302
    assert response["Location"] == reverse("template_edit", args=[SUBJECT]) + "?language=ja"
    assert LetterTemplate.objects.get().language == "ja"
    got = subjects(two.a_campaign, two.a_staff)
    assert got["noc@isp.jp.example"].startswith("不正中継のお知らせ: ")
    assert got["abuse@isp.us.example"].startswith(f"{A}: open mail relay")


def test_the_editor_lists_each_language_and_reverts_one_copy_audited(client, two):
    save(client, two.a_admin, SUBJECT, "FTC notice: {{ ips }}")
    save(client, two.a_admin, SUBJECT, "FTC-Hinweis: {{ ips }}", language="de")
    response = client.get(reverse("template_edit", args=[SUBJECT]) + "?language=de")
    assert response.status_code == 200
    assert response.context["form"].initial["source"] == "FTC-Hinweis: {{ ips }}"
    status = {row["code"]: row["status"] for row in response.context["languages"]}
    assert len(status) == 21
    assert status["en"] == status["de"] == "own"
    assert {s for code, s in status.items() if code not in ("en", "de")} == {"shipped"}
    body = response.content.decode()
    assert 'data-language="ja" data-status="shipped"' in body
    assert 'data-language="de" data-status="own"' in body
    listing = client.get(reverse("agency_list")).content.decode()
    assert "Edited: en, de" in listing
    # B's admin: none of A's copies show up as B's.
    client.force_login(two.b_admin)
    b_rows = client.get(reverse("template_edit", args=[SUBJECT])).context["languages"]
    assert {row["status"] for row in b_rows} == {"shipped"}
    assert client.post(reverse("template_edit", args=[SUBJECT]),
                       {"revert": "1", "language": "de"}).status_code == 302
    assert LetterTemplate.objects.count() == 2  # B had nothing to revert
    # A reverts German: English stays, German is shipped again.
    client.force_login(two.a_admin)
    response = client.post(reverse("template_edit", args=[SUBJECT]),
                           {"revert": "1", "language": "de"})
    assert response.status_code == 302
    assert list(LetterTemplate.objects.values_list("language", flat=True)) == ["en"]
    event = AuditEvent.objects.get(action="letters.template_revert")
    assert event.actor == two.a_admin
    assert event.data == {"name": SUBJECT, "language": "de", "agency": A,
                          "source": "FTC-Hinweis: {{ ips }}"}
    response = client.get(reverse("template_edit", args=[SUBJECT]) + "?language=de")
    assert response.context["form"].initial["source"] == (TEMPLATE_DIR / SUBJECT).read_text()


def test_an_unknown_language_falls_back_to_english_not_an_error(client, two):
    client.force_login(two.a_admin)
    response = client.get(reverse("template_edit", args=[SUBJECT]) + "?language=xx%00")
    assert response.status_code == 200 and response.context["language"] == "en"


def test_the_migration_keeps_earlier_copies_as_the_installations_english(db, two):
    call_command("migrate", "letters", "0004", verbosity=0, stdout=io.StringIO())
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO letters_lettertemplate (name, source, updated_at)"
                " VALUES (%s, %s, now())", [SUBJECT, "Old copy: {{ ips }}"])
            # Check the deferred foreign keys now: PostgreSQL alters no table with checks
            # pending (a real upgrade commits its rows long before it migrates).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    finally:
        call_command("migrate", "letters", verbosity=0, stdout=io.StringIO())
    copy = LetterTemplate.objects.get()
    assert (copy.agency_id, copy.name, copy.language, copy.source) == (
        None, SUBJECT, "en", "Old copy: {{ ips }}")
    assert subjects(two.b_campaign, two.b_staff)["abuse@isp.de.example"].startswith("Old copy:")
