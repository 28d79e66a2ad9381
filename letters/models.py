from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from letters import states
from letters.languages import ENGLISH, LANGUAGES
from letters.rendering import EDITABLE_TEMPLATES


class LetterSettings(models.Model):
    """Per-campaign letter options (kept here so the core Campaign model stays small)."""

    campaign = models.OneToOneField(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="letter_settings"
    )
    bilingual = models.BooleanField(
        default=False, help_text="Send the local language followed by English"
    )

    class Meta:
        verbose_name_plural = "letter settings"

    def __str__(self) -> str:
        return f"letters of {self.campaign_id}"


class LetterTemplate(models.Model):
    """A staff-edited copy of one of the shipped templates (letters/jinja/), for one language
    and one agency.

    Per language because the shipped templates carry all 21 languages as gettext messages
    (`{% trans %}`): an edited message has no translation, so an edit made in English would
    turn every other language into English. Per agency because each agency writes its own
    letters; `agency` null is the installation's copy (made by an admin bound to no agency),
    used by agencies without a copy of their own (letters.rendering.resolve_overrides).
    """

    agency = models.ForeignKey(
        "campaign.Agency", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=40, choices=[(n, n) for n in EDITABLE_TEMPLATES])
    language = models.CharField(max_length=10, default=ENGLISH,
                                choices=[(code, code) for code in LANGUAGES])
    source = models.TextField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            # NULL is distinct from NULL in a plain unique constraint: one per scope.
            models.UniqueConstraint(fields=["agency", "name", "language"],
                                    condition=models.Q(agency__isnull=False),
                                    name="letters_template_one_per_agency"),
            models.UniqueConstraint(fields=["name", "language"],
                                    condition=models.Q(agency__isnull=True),
                                    name="letters_template_one_installation_wide"),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}]"


class Batch(models.Model):
    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="letter_batches"
    )
    # The agency that builds, reviews and sends it (joint campaigns: each its own hosts);
    # None on batches from before partner agencies, which belong to the campaign's lead.
    agency = models.ForeignKey(
        "campaign.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        max_length=10, choices=[(s, s) for s in states.BATCH_STATES], default=states.DRAFT
    )
    # None: drafted by the campaign's automation (campaign.automation), not by a person.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    # Everyone who built or changed the batch: none of them may approve it (four eyes).
    editors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    filters = models.JSONField(default=dict, blank=True)
    # Why hosts or letters left the batch (found closed on a re-test, edited out, …).
    notes = models.JSONField(default=list, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    review_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the builder left out and why (letters/holdout.py, letters/cadence.py):
    # {"held_out": N, "waiting": N, "waiting_contacts": [{"email", "reason", "until"}]}.
    screened = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["campaign", "state"])]

    def __str__(self) -> str:
        return f"batch #{self.pk} ({self.state})"


def _new_key() -> str:
    return uuid.uuid4().hex


class Letter(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="letters")
    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="letters"
    )
    kind = models.CharField(
        max_length=16, choices=[(k, k) for k in states.KINDS], default=states.FIRST_NOTICE
    )
    state = models.CharField(
        max_length=10, choices=[(s, s) for s in states.LETTER_STATES], default=states.DRAFT
    )
    # E-mail (sent by the mailer) or post (printed, posted and marked by staff: letters.postal);
    # a postal letter has no e-mail address, and its postal address instead.
    channel = models.CharField(
        max_length=6, choices=[(c, c) for c in states.CHANNELS], default=states.EMAIL
    )
    email = models.EmailField(blank=True)
    postal_address = models.TextField(blank=True)
    # What the printed letter gives for the recipient's page, typed from paper: /s/<code>.
    short_code = models.CharField(max_length=12, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    language = models.CharField(max_length=10, default="en")
    bilingual = models.BooleanField(default=False)
    # Unique per letter, chosen when it is built: the claim, the Message-ID and the ESP's
    # metadata all carry it, so a retried or redelivered send can never make a second letter.
    idempotency_key = models.CharField(max_length=32, unique=True, default=_new_key)
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    subject = models.CharField(max_length=998)
    body_text = models.TextField()
    body_html = models.TextField()
    context = models.JSONField(default=dict)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    hosts = models.ManyToManyField("campaign.Host", through="LetterHost", related_name="letters")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["batch", "state"]),
            models.Index(fields=["campaign", "state"]),
            models.Index(fields=["email"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["short_code"], condition=~models.Q(short_code=""),
                                    name="letter_short_code_unique"),
        ]

    def __str__(self) -> str:
        return f"letter #{self.pk} to {self.recipient} ({self.state})"

    @property
    def is_postal(self) -> bool:
        return self.channel == states.POSTAL

    @property
    def recipient(self) -> str:
        """Who it goes to, on one line: the e-mail address, or the postal address."""
        if self.is_postal:
            return ", ".join(line for line in self.postal_address.splitlines() if line.strip())
        return self.email

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


class LetterHost(models.Model):
    """One host a letter is about, with the evidence the letter quotes for it."""

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="letter_hosts")
    host = models.ForeignKey("campaign.Host", on_delete=models.CASCADE, related_name="letter_links")
    # For second notices: the follow-up re-test that found the host still open.
    retest = models.ForeignKey(
        "Retest", null=True, blank=True, on_delete=models.SET_NULL, related_name="letter_links"
    )
    evidence = models.JSONField(default=list, blank=True)
    # Found closed on a re-test before the letter left: kept for the record, not written about.
    dropped = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["letter", "host"], name="letterhost_unique")
        ]
        indexes = [models.Index(fields=["host", "letter"])]

    def __str__(self) -> str:
        return f"letter {self.letter_id} about host {self.host_id}"


class Retest(models.Model):
    """A follow-up re-test of a notified host, and what came of it."""

    REMEDIATED = "remediated"
    STILL_OPEN = "still_open"
    INCONCLUSIVE = "inconclusive"
    OUTCOME_CHOICES = [
        (REMEDIATED, "Closed"), (STILL_OPEN, "Still open"), (INCONCLUSIVE, "Inconclusive"),
    ]

    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="retests"
    )
    host = models.ForeignKey("campaign.Host", on_delete=models.CASCADE, related_name="retests")
    probe_run_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=OUTCOME_CHOICES)
    evidence = models.JSONField(default=list, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["host", "at"]), models.Index(fields=["campaign", "outcome"]),
        ]

    def __str__(self) -> str:
        return f"re-test of host {self.host_id}: {self.outcome}"


class LetterEvent(models.Model):
    """A tracking event from the ESP (delivered, bounced, complained, opened, …)."""

    letter = models.ForeignKey(
        Letter, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=255, blank=True)
    event_type = models.CharField(max_length=20)
    recipient = models.CharField(max_length=254, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            # ESPs resend webhooks; the same event must count once.
            models.UniqueConstraint(
                fields=["esp", "event_id"], name="letterevent_unique_event",
                condition=~models.Q(event_id=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} for letter {self.letter_id}"


class InboundMessage(models.Model):
    """A message that came back: through the ESP's inbound webhook, an MTA's pipe
    (`receive_mail`) or the IMAP poller; classified (letters.inbound) and threaded to its
    letter. Kept whatever it holds, the unreadable ones too (flagged, for staff)."""

    BOUNCE, COMPLAINT, AUTO_REPLY, REPLY, UNMATCHED = (
        "bounce", "complaint", "auto_reply", "reply", "unmatched")
    KIND_CHOICES = [(BOUNCE, "Bounce"), (COMPLAINT, "Complaint"), (AUTO_REPLY, "Auto-reply"),
                    (REPLY, "Reply"), (UNMATCHED, "Unmatched")]

    letter = models.ForeignKey(
        Letter, null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    # Where it came in: an ESP's name, "pipe" (receive_mail), "imap", "recipient-page".
    esp = models.CharField(max_length=40)
    kind = models.CharField(max_length=12, choices=KIND_CHOICES, default=REPLY)
    reason = models.CharField(max_length=200, blank=True, help_text="why it is that kind")
    matched_by = models.CharField(max_length=20, blank=True,
                                  help_text="verp, message_id, recipient, sender or empty")
    # Bounced or complaining recipients: [{"address", "status", "permanent"}].
    recipients = models.JSONField(default=list, blank=True)
    # The message as it came (bounces and unreadable mail are kept for staff and audit).
    raw = models.BinaryField(blank=True, default=b"")
    # sha256 of the raw message: the same message delivered twice is recorded once.
    digest = models.CharField(max_length=64, blank=True)
    parse_error = models.CharField(max_length=300, blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    to = models.TextField(blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    in_reply_to = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["digest"], name="inboundmessage_unique_digest",
                                    condition=~models.Q(digest="")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} from {self.from_email}: {self.subject}"


class ContactDraw(models.Model):
    """The control-group draw for one contact of a campaign: made once, kept for the record.

    Drawn by contact, not by host, so one owner is either written to or not; the draw is a
    hash of the campaign's seed and the address (letters/holdout.py), so anyone can repeat it.
    """

    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="contact_draws"
    )
    email = models.EmailField()
    held_out = models.BooleanField()
    bucket = models.FloatField(help_text="The draw in [0, 1); held out when below the share")
    percent = models.PositiveSmallIntegerField(help_text="The held-out share when drawn")
    reason = models.CharField(max_length=200)
    drawn_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "email"], name="contactdraw_unique")
        ]
        indexes = [models.Index(fields=["campaign", "held_out"])]

    def __str__(self) -> str:
        return f"{self.email}: {'held out' if self.held_out else 'notified'}"


class ControlHost(models.Model):
    """A host of a held-out contact: re-tested like a notified host, never written to."""

    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="control_hosts"
    )
    host = models.OneToOneField("campaign.Host", on_delete=models.CASCADE,
                                related_name="control")
    draw = models.ForeignKey(ContactDraw, on_delete=models.CASCADE, related_name="hosts")
    # When a letter would have been written (the batch that held it out): the clock's start.
    since = models.DateTimeField(default=timezone.now)
    last_retest_at = models.DateTimeField(null=True, blank=True)
    # The first follow-up re-test that found it closed (as Host.remediated_at for notified).
    remediated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "remediated_at"])]

    def __str__(self) -> str:
        return f"control host {self.host_id}"


class ContactPreference(models.Model):
    """What a recipient asked for on their page, kept on each contact of that letter.

    The builder writes the contact's next letter in `language`; with `business_days_only`
    a letter to the contact waits, queued, until it is Monday to Friday in `time_zone`.
    """

    contact = models.OneToOneField("probes.Contact", on_delete=models.CASCADE,
                                   related_name="letter_preference")
    language = models.CharField(max_length=10, blank=True,
                                help_text="A letter language; empty: the contact's own")
    business_days_only = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True, help_text="A zoneinfo name")
    # The letter whose page it was set on (for the record).
    letter = models.ForeignKey(Letter, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"preferences of contact {self.contact_id}"


class HostOutcome(models.Model):
    """One host's part in its campaign's report, kept current on PostgreSQL by triggers.

    The report and the effect of a campaign of a million hosts must come back in under a
    second; joining links, letters, hosts and contacts every time does not (measured:
    bench/report_bench.py). Triggers (migration letters/0004) queue a host in `OutcomeDirty`
    whenever something the report reads changes; `letters.outcomes.refresh_outcomes` turns
    the queue into these rows before every report and once a minute. Only hosts written to
    (a sent, kept link) or held out (a ControlHost) have a row.

    No database constraints on the two keys: their checks would run at the refresh's commit
    and wait on a batch build's lock of the campaign row; rows go with their host through
    Django's cascade, and a refresh drops the queue entries of deleted hosts.
    """

    host = models.OneToOneField("campaign.Host", on_delete=models.CASCADE, primary_key=True,
                                related_name="+", db_constraint=False)
    campaign = models.ForeignKey("campaign.Campaign", on_delete=models.CASCADE, related_name="+",
                                 db_constraint=False)
    # The report's country (the host's own, else its contact's, else "--"); the effect's
    # breakdown uses the host's own only.
    country = models.CharField(max_length=2)
    host_country = models.CharField(max_length=2, blank=True)
    # From the first letter that left about the host (any kind): the report's columns.
    first_sent = models.DateTimeField(null=True)
    language = models.CharField(max_length=10, blank=True)
    delivered = models.BooleanField(default=False)
    bounced = models.BooleanField(default=False)
    replied = models.BooleanField(default=False)
    # Tenths of days from first_sent to the re-test that found it closed (remediated hosts).
    fixed_tenths = models.IntegerField(null=True)
    # The host's group in the effect (letters.effect): "notified" from its first sent first
    # notice, else "control" from the hold-out. Times are microseconds since the epoch, t0
    # also as whole days and the rest of its day, so that whole days to any cut-off are
    # counted per (day, rest before/after the cut-off's) without per-row date arithmetic;
    # fixed_days is set when the re-test that found it closed came at or after t0.
    effect_group = models.CharField(max_length=8, blank=True)
    effect_language = models.CharField(max_length=10, blank=True)
    effect_t0_us = models.BigIntegerField(null=True)
    effect_t0_day = models.IntegerField(null=True)
    effect_t0_rest_us = models.BigIntegerField(null=True)
    effect_fixed_us = models.BigIntegerField(null=True)
    effect_fixed_days = models.IntegerField(null=True)
    # The rare notified host that is also in the control group (held out, written to after
    # its contact changed): its control membership, counted in that group too.
    control_language = models.CharField(max_length=10, blank=True)
    control_t0_us = models.BigIntegerField(null=True)
    control_fixed_us = models.BigIntegerField(null=True)
    control_fixed_days = models.IntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["campaign"], name="letters_outcome_also_control",
                         condition=models.Q(control_t0_us__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"outcome of host {self.host_id}"


class OutcomeDirty(models.Model):
    """A host whose HostOutcome must be recomputed (written by triggers, drained in bulk)."""

    id = models.BigAutoField(primary_key=True)
    # No foreign key: a trigger may queue a host in the statement that deletes it.
    host_id = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"host {self.host_id} to refresh"
