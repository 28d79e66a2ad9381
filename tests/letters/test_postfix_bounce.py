"""A real MTA's bounce: Debian's postfix on loopback accepts a letter for a local user that
does not exist, bounces it to the letter's VERP return path, and hands the DSN to a pipe
transport (as an agency's MTA would hand it to `receive_mail`); what it wrote bounces the
letter it came from."""

import io
import os
import shutil
import smtplib
import tempfile
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from letters import states
from letters.models import InboundMessage, Letter
from probes.contacts.models import Suppression
from tests.probes import servers

pytestmark = [pytest.mark.servers, pytest.mark.django_db]

BOUNCE_DOMAIN = "bounce.sys-test.invalid"


class BouncingPostfix(servers.Postfix):
    """The probes' private postfix, set to bounce unknown local users (5.1.1) and to pipe
    mail for the bounce domain into files, as an agency's MTA pipes it to receive_mail."""

    def __init__(self, root: Path, captured: Path) -> None:
        super().__init__(root)
        self.captured = captured

    def write_config(self) -> None:
        super().write_config()
        script = self.captured / "capture.sh"
        script.write_text('#!/bin/sh\ncat > "$1/dsn-$$.eml"\n')
        script.chmod(0o755)
        main = (self.conf / "main.cf").read_text()
        main = main.replace("mydestination = $myhostname",
                            f"mydestination = $myhostname, {BOUNCE_DOMAIN}")
        main = main.replace("local_transport = discard",
                            "local_transport = error:5.1.1 User unknown in local recipient table")
        main += f"transport_maps = inline:{{{BOUNCE_DOMAIN}=capture:}}\n"
        # Accept the unknown user and bounce afterwards (a DSN), as a mail hub behind a
        # relay does; refused at RCPT time it would be our mailer's error, not a bounce.
        main += "smtpd_reject_unlisted_recipient = no\n"
        (self.conf / "main.cf").write_text(main)
        with (self.conf / "master.cf").open("a") as master:
            master.write(f"capture unix - n n - - pipe flags=DRO user=nobody "
                         f"argv={script} {self.captured}\n")


@pytest.fixture
def bouncing_postfix():
    assert "postfix" not in servers.have_binaries(), "installed by .ci/install-system-packages"
    # Not pytest's tmp_path (0700 parents): postfix's daemons must reach their data directory
    # and the pipe, run as nobody, a directory it may write.
    root = Path(tempfile.mkdtemp(prefix="sys-postfix-bounce-"))
    root.chmod(0o755)
    captured = root / "captured"
    captured.mkdir()
    captured.chmod(0o777)
    postfix = BouncingPostfix(root / "postfix", captured)
    postfix.start()
    try:
        yield postfix
    finally:
        postfix.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postfix_s_own_bounce_finds_and_bounces_its_letter(bouncing_postfix, finding, campaign,
                                                           bob, rita, settings):
    from letters import sending
    from tests.letters.helpers import approved_batch

    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    finding(email="nobody-here@mx.sys-test.invalid", language="de", country="DE")
    sending.send_batch(batch=approved_batch(campaign, bob, rita))  # locmem: nothing leaves
    letter = Letter.objects.get()
    built = sending.build_message(letter)
    assert built.from_email == f"bounces+{letter.idempotency_key}@{BOUNCE_DOMAIN}"

    # The letter, as our mailer would hand it to the agency's MTA (envelope = return path).
    with smtplib.SMTP(bouncing_postfix.open.host, bouncing_postfix.open.port, timeout=10) as smtp:
        smtp.sendmail(built.from_email, [letter.email], built.message().as_bytes())

    deadline = time.monotonic() + 30
    while not list(bouncing_postfix.captured.glob("dsn-*.eml")):
        assert time.monotonic() < deadline, bouncing_postfix.read_log()[-3000:]
        time.sleep(0.2)
    time.sleep(0.3)  # the pipe's cat may still be writing
    (dsn_file,) = bouncing_postfix.captured.glob("dsn-*.eml")
    raw = dsn_file.read_bytes()
    assert b"message/delivery-status" in raw and b"5.1.1" in raw  # postfix's own DSN

    out = io.StringIO()
    call_command("receive_mail", "--file", str(dsn_file), stdout=out)
    assert out.getvalue().strip() == f"kind=bounce letter={letter.pk} recipients=1"
    letter.refresh_from_db()
    assert letter.state == states.BOUNCED
    stored = InboundMessage.objects.get()
    assert stored.matched_by == "verp"
    assert stored.recipients == [{"address": "nobody-here@mx.sys-test.invalid",
                                  "status": "5.1.1", "permanent": True}]
    assert Suppression.objects.filter(value="nobody-here@mx.sys-test.invalid").exists()
    assert os.stat(dsn_file).st_size == len(raw)
