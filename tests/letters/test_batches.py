"""Building, reviewing and editing batches: filters, one letter per contact, four eyes."""

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from campaign import states as host_states
from campaign.models import AuditEvent
from letters import batches, errors, selectors, states
from letters.models import Letter, LetterSettings
from probes.contacts.models import Suppression

pytestmark = pytest.mark.django_db


def test_one_letter_per_contact_lists_all_of_its_hosts(campaign, bob, finding):
    a = finding(email="abuse@isp-one.example", language="de", country="DE")
    b = finding(email="abuse@isp-one.example", language="de", country="DE",
                check="http_proxy", port=8080, variant="connect")
    c = finding(email="noc@isp-two.example", language="ja", country="JP")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    letters = {letter.email: letter for letter in batch.letters.all()}
    assert set(letters) == {"abuse@isp-one.example", "noc@isp-two.example"}
    german = letters["abuse@isp-one.example"]
    assert german.language == "de" and german.state == states.DRAFT
    assert a.ip in german.body_text and b.ip in german.body_text and c.ip not in german.body_text
    assert "offener HTTP-Proxy" in german.body_text
    assert set(german.hosts.values_list("ip", flat=True)) == {a.ip, b.ip}
    assert "オープンメールリレー" in letters["noc@isp-two.example"].body_text


def test_the_builder_skips_suppressed_notified_and_already_batched_hosts(campaign, bob, finding):
    finding(email="abuse@fine.example")
    finding(email="abuse@blocked.example")
    finding(email="abuse@done.example", state=host_states.NOTIFIED)
    Suppression.objects.create(value="blocked.example", kind=Suppression.DOMAIN, reason="asked")
    first = batches.build_batch(campaign=campaign, actor=bob)
    assert list(first.letters.values_list("email", flat=True)) == ["abuse@fine.example"]
    again = batches.build_batch(campaign=campaign, actor=bob)
    assert again.letters.count() == 0  # the host is taken by the first (live) batch


def test_filters_by_country_language_and_maximum(campaign, bob, finding):
    finding(email="a@de.example", language="de", country="DE")
    finding(email="b@de.example", language="de", country="DE")
    finding(email="c@fr.example", language="fr", country="FR")
    finding(email="d@jp.example", language="ja", country="JP")
    by_country = batches.build_batch(campaign=campaign, actor=bob, country="fr")
    assert list(by_country.letters.values_list("email", flat=True)) == ["c@fr.example"]
    by_language = batches.build_batch(campaign=campaign, actor=bob, language="de", max_letters=1)
    assert by_language.letters.count() == 1
    assert by_language.filters == {"language": "de", "country": "", "max": 1}


def test_a_host_without_an_open_result_is_not_written_about(campaign, bob, finding):
    from probes.verification.models import ProbeResult

    host = finding(email="x@example.org")
    ProbeResult.objects.filter(host=host).update(verdict="not_open")
    assert batches.build_batch(campaign=campaign, actor=bob).letters.count() == 0


def test_a_bilingual_campaign_writes_local_language_and_english(campaign, bob, finding):
    LetterSettings.objects.create(campaign=campaign, bilingual=True)
    finding(email="a@bg.example", language="bg", country="BG")
    letter = batches.build_batch(campaign=campaign, actor=bob).letters.get()
    assert letter.bilingual
    assert "Уважаеми мрежови администратор" in letter.body_text
    assert "Dear network administrator" in letter.body_text


def test_the_batch_goes_draft_submitted_approved_with_audit(campaign, bob, rita, finding):
    finding(email="a@example.org")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    batches.approve_batch(batch=batch, actor=rita, comment="reads well")
    batch.refresh_from_db()
    assert batch.state == states.APPROVED and batch.reviewed_by == rita
    assert set(batch.letters.values_list("state", flat=True)) == {states.QUEUED}
    actions = list(AuditEvent.objects.filter(object_type="batch", object_id=str(batch.pk))
                   .order_by("id").values_list("action", "actor__username"))
    assert actions == [("batch.create", "bob"), ("batch.submit", "bob"),
                       ("batch.approve", "rita")]


def test_only_reviewers_approve(campaign, bob, alice, finding):
    finding(email="a@example.org")
    batch = batches.submit_batch(batch=batches.build_batch(campaign=campaign, actor=bob),
                                  actor=bob)
    for person in (bob, alice):
        with pytest.raises(PermissionDenied):
            batches.approve_batch(batch=batch, actor=person)


def test_a_reviewer_cannot_approve_a_batch_they_built(campaign, ada, rita, finding):
    finding(email="a@example.org")
    batch = batches.build_batch(campaign=campaign, actor=ada)
    batches.submit_batch(batch=batch, actor=ada)
    with pytest.raises(errors.FourEyesViolation):
        batches.approve_batch(batch=batch, actor=ada)
    batches.approve_batch(batch=batch, actor=rita)


def test_editing_a_submitted_batch_sends_it_back_and_bars_the_editor(
        campaign, bob, ada, rita, victor, finding):
    keep = finding(email="a@example.org")
    drop = finding(email="a@example.org", check="socks5", port=1080)
    batch = batches.build_batch(campaign=campaign, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    batches.remove_host(batch=batch, host=drop, actor=ada, reason="wrong network")
    batch.refresh_from_db()
    assert batch.state == states.DRAFT
    letter = batch.letters.get()
    assert drop.ip not in letter.body_text and keep.ip in letter.body_text
    assert batch.notes[-1]["ip"] == drop.ip
    batches.submit_batch(batch=batch, actor=bob)
    with pytest.raises(errors.FourEyesViolation):
        batches.approve_batch(batch=batch, actor=ada)  # she edited it
    batches.approve_batch(batch=batch, actor=victor)
    batches.remove_letter(letter=letter, actor=bob, reason="second thoughts")
    batch.refresh_from_db()
    assert batch.state == states.DRAFT  # even an approved batch goes back
    assert AuditEvent.objects.filter(action="batch.reopen", object_id=str(batch.pk)).count() == 2


def test_rejecting_needs_a_comment_and_frees_the_hosts(campaign, bob, rita, finding):
    finding(email="a@example.org")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    with pytest.raises(errors.LetterError):
        batches.reject_batch(batch=batch, actor=rita, comment=" ")
    batches.reject_batch(batch=batch, actor=rita, comment="tone is off")
    assert set(batch.letters.values_list("state", flat=True)) == {states.CANCELLED}
    assert batches.build_batch(campaign=campaign, actor=bob).letters.count() == 1


def test_an_approved_batch_cannot_be_approved_twice(campaign, bob, rita, victor, finding):
    finding(email="a@example.org")
    batch = batches.submit_batch(batch=batches.build_batch(campaign=campaign, actor=bob),
                                  actor=bob)
    batches.approve_batch(batch=batch, actor=rita)
    with pytest.raises(states.IllegalTransition):
        batches.approve_batch(batch=batch, actor=victor)


def test_the_command_line_workflow_prints_the_contract_lines(campaign, bob, rita, finding,
                                                              capsys):
    finding(email="a@example.org")
    finding(email="b@example.org", language="ja", country="JP")
    call_command("letters_batch", "create", "--campaign", campaign.slug, "--by", "bob")
    out = capsys.readouterr().out.strip().splitlines()[-1]
    batch_id = int(out.split()[0].split("=")[1])
    assert out == f"batch={batch_id} letters=2"
    call_command("letters_batch", "submit", str(batch_id), "--by", "bob")
    assert capsys.readouterr().out.strip() == f"batch={batch_id} state=submitted"
    with pytest.raises(CommandError, match="may not approve"):
        call_command("letters_batch", "approve", str(batch_id), "--by", "bob")
    call_command("letters_batch", "approve", str(batch_id), "--by", "rita", "--comment", "ok")
    assert capsys.readouterr().out.strip() == f"batch={batch_id} state=approved"
    call_command("letters_batch", "send", str(batch_id))
    assert capsys.readouterr().out.strip() == "sent=2 failed=0"


def test_approving_ones_own_batch_exits_non_zero_with_a_message(campaign, ada, finding):
    finding(email="a@example.org")
    batch = batches.submit_batch(batch=batches.build_batch(campaign=campaign, actor=ada),
                                  actor=ada)
    with pytest.raises(CommandError) as caught:
        call_command("letters_batch", "approve", str(batch.pk), "--by", "ada")
    assert "built or edited" in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_the_approve_command_fails_as_a_process_with_stderr(campaign, ada, finding):
    """As an operator sees it: a non-zero exit status and the reason on stderr."""
    import os
    import subprocess
    import sys

    from django.db import connection

    finding(email="a@example.org")
    batch = batches.submit_batch(batch=batches.build_batch(campaign=campaign, actor=ada),
                                  actor=ada)
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "campaign.test_settings",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "letters_batch", "approve", str(batch.pk), "--by", "ada"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode != 0
    assert "ada built or edited batch" in done.stderr and "second reviewer" in done.stderr
    assert done.stdout == ""
    batch.refresh_from_db()
    assert batch.state == states.SUBMITTED


def test_reject_requires_a_comment_on_the_command_line(campaign, bob, rita, finding):
    finding(email="a@example.org")
    batch = batches.submit_batch(batch=batches.build_batch(campaign=campaign, actor=bob),
                                  actor=bob)
    with pytest.raises(CommandError):
        call_command("letters_batch", "reject", str(batch.pk), "--by", "rita")
    call_command("letters_batch", "reject", str(batch.pk), "--by", "rita", "--comment", "no")
    batch.refresh_from_db()
    assert batch.state == states.REJECTED and batch.review_comment == "no"


def test_selectors_give_counts_and_host_letters(campaign, bob, finding):
    host = finding(email="a@example.org")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    counts = selectors.letter_counts(campaign)
    assert counts["by_state"]["draft"] == 1 and counts["by_state"]["sent"] == 0
    letter = Letter.objects.get()
    assert selectors.host_letters(host)[0] == {
        "id": letter.pk, "state": "draft", "kind": "first_notice", "batch": batch.pk,
        "sent_at": None,
    }


def test_building_a_batch_takes_a_constant_number_of_queries(campaign, bob, finding,
                                                             django_assert_max_num_queries):
    for i in range(5):
        finding(email=f"a{i}@example.org", language=["de", "ja", "bg"][i % 3])
    # 2 of these: the control-group draw and the cadence look-up (letters/holdout, cadence);
    # 2 the hosts to write to by post (first and second notices: letters.selectors);
    # 1 the lz4 setting of the transaction, and once per process 1 whether the server has it.
    with django_assert_max_num_queries(27) as few:
        batches.build_batch(campaign=campaign, actor=bob)
    small = len(few.captured_queries)
    for i in range(40):
        finding(email=f"b{i}@example.org", language=["fr", "ko", "sr"][i % 3])
    with django_assert_max_num_queries(small):
        batches.build_batch(campaign=campaign, actor=bob)


def test_letter_contexts_survive_a_json_round_trip(campaign, bob, finding):
    import json

    finding(email="a@example.org")
    letter = batches.build_batch(campaign=campaign, actor=bob).letters.get()
    assert json.loads(json.dumps(letter.context)) == letter.context
