from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext

from campaign import kinds, states
from campaign.jobs import Job


class Agency(models.Model):
    name = models.CharField(max_length=200, unique=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    sender_email = models.EmailField(blank=True)
    reply_to = models.EmailField(blank=True)
    # Bounces come back to bounces+<letter token>@this domain (VERP); empty: BOUNCE_DOMAIN.
    bounce_domain = models.CharField(max_length=253, blank=True)
    # DKIM for letters sent through the agency's own mail server (letters/dkim_signing.py):
    # the selector and the path of the PEM key file on this server; empty: DKIM_* settings.
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_key_file = models.CharField(max_length=500, blank=True)
    letterhead = models.TextField(blank=True)
    signature = models.TextField(blank=True)
    # Paper and window envelope of printed letters (letters.postal.printing): DIN 5008 on A4
    # for C5/DL envelopes, or US Letter for #10 envelopes; empty: by the agency's country.
    postal_format = models.CharField(
        max_length=8, blank=True,
        choices=[("", "by country"), ("din5008", "A4, DIN 5008 (C5/DL window envelope)"),
                 ("us10", "US Letter (#10 window envelope)")])
    default_language = models.CharField(max_length=10, default="en")
    info_url = models.URLField(blank=True, help_text="The agency's page about the operation")
    instructions_url = models.URLField(blank=True, help_text="Step-by-step closing instructions")
    # Countries (ISO codes) whose hosts this agency writes to in a joint campaign.
    jurisdiction = models.JSONField(default=list, blank=True)
    # Cadence: at most one letter per contact within this many days, across all campaigns.
    min_days_between_letters = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StaffProfile(models.Model):
    """Which agency a user works for; staff see only their agency's campaigns."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"{self.user} @ {self.agency or '-'}"


class Campaign(models.Model):
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"
    STATUS_CHOICES = [(ACTIVE, "Active"), (PAUSED, "Paused"), (CLOSED, "Closed")]

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="campaigns")
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    kinds = models.PositiveSmallIntegerField(default=kinds.RELAY | kinds.PROXY)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=ACTIVE)
    reprobe_interval_days = models.PositiveIntegerField(default=7)
    followup_delay_days = models.PositiveIntegerField(default=30)
    # Control group (letters/holdout.py): the share of contacts never written to, drawn
    # reproducibly from this seed, so the report can compare against a baseline.
    holdout_percent = models.PositiveSmallIntegerField(default=0)
    holdout_seed = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Joint campaigns: agencies besides the lead (`agency`) that write to the hosts in their
    # jurisdiction (routing in campaign.agencies); their staff see the campaign too.
    partners = models.ManyToManyField(Agency, blank=True, related_name="partner_campaigns")
    # Automation policy (campaign.automation): what the system does without a person. Off by
    # default; review and approval always stay with people.
    auto_probe_new = models.BooleanField(default=False,
                                         help_text="Probe new hosts as they arrive")
    auto_resolve_contacts = models.BooleanField(
        default=False, help_text="Resolve the abuse contacts of verified hosts")
    auto_draft_batches = models.BooleanField(
        default=False, help_text="Draft a batch per language every day, for review")

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("import_feed", "Can import blocklist feeds"),
            ("run_probes", "Can start probe runs"),
            ("resolve_contacts", "Can resolve and edit abuse contacts"),
            ("build_batch", "Can build and submit letter batches"),
            ("review_batch", "Can approve or reject letter batches"),
            ("send_batch", "Can send approved batches"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def kind_names(self) -> list[str]:
        return kinds.kind_names(self.kinds)


class Feed(models.Model):
    """A source of suspected hosts: a named list, optionally fetched from a URL."""

    FORMAT_CHOICES = [
        ("auto", "Detect"),
        ("ip", "One IP per line"),
        ("ipport", "ip:port proxy list"),
        ("csv", "Shadowserver-style CSV"),
        ("drop", "Spamhaus DROP"),
        ("netset", "FireHOL netset"),
        ("intelmq", "IntelMQ events (JSON lines)"),
    ]

    name = models.CharField(max_length=200, unique=True)
    format = models.CharField(max_length=10, choices=FORMAT_CHOICES, default="auto")
    url = models.URLField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class FeedImport(Job):
    detail_url_name = "import_detail"
    status_url_name = "import_status"
    title = "Import"
    progress_label = "Feed read"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="imports")
    source = models.CharField(max_length=2000, help_text="Path or URL the lines came from")
    stored_file = models.CharField(max_length=500, blank=True)
    requested_format = models.CharField(max_length=10, default="auto")
    detected_format = models.CharField(max_length=10, blank=True)
    kind = models.PositiveSmallIntegerField(help_text="Kind bit mask the hosts are suspected of")
    # Said by the person (--kind, the form), not taken from the campaign: for formats whose
    # lines carry their own kind (IntelMQ), only a stated kind covers lines naming none.
    kind_given = models.BooleanField(default=False)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    bytes_read = models.BigIntegerField(default=0)
    lines = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    known = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import #{self.pk} of {self.source}"

    @property
    def progress_done(self) -> int:
        return self.bytes_read

    @property
    def progress_total(self) -> int | None:
        return self.bytes_total

    @property
    def summary_line(self) -> str:
        return f"lines={self.lines} added={self.added} known={self.known} rejected={self.rejected}"

    @property
    def count_tiles(self) -> list[dict]:
        return [{"key": key, "label": label, "n": getattr(self, key), "field": key}
                for key, label in (("lines", "Lines"), ("added", "Added"),
                                   ("known", "Already known"), ("rejected", "Rejected"),
                                   ("duplicates", "Duplicates"))]

    @staticmethod
    def kind_missing(campaign: Campaign) -> str:
        """Why an import of a relay-and-proxy campaign's feed that did not say which it lists
        failed, in the command line's words (the import page's form asks for the kind)."""
        return (f"campaign {campaign.slug} targets relays and proxies; "
                "say which this feed lists (--kind relay or --kind proxy)")

    @property
    def error_text(self) -> str:
        """A failed import's error as the staff pages show it: no command-line options."""
        if self.error and self.error == self.kind_missing(self.campaign):
            return gettext("This campaign targets open mail relays and open proxies, and the "
                           "import did not say which this feed lists. Import it again and "
                           "choose one.")
        return self.error

    def extra_status_data(self) -> dict:
        return {"bytes_read": self.bytes_read, "bytes_total": self.bytes_total,
                "lines": self.lines, "added": self.added, "known": self.known,
                "rejected": self.rejected, "duplicates": self.duplicates}


class FeedSubscription(models.Model):
    """A feed URL the campaign fetches on a schedule (conditional GET; see subscriptions.py)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE,
                                 related_name="subscriptions")
    url = models.URLField(max_length=2000)
    format = models.CharField(max_length=10, default="auto")
    kind = models.CharField(max_length=10, blank=True, help_text="relay, proxy, or blank")
    # One of the two schedules: every N seconds, or a five-field cron expression (UTC).
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    cron = models.CharField(max_length=100, blank=True)
    # The name of an environment variable FEED_AUTH_<NAME> holding "Header-Name: value"; the
    # secret itself is never stored in the database.
    auth_secret = models.CharField(max_length=60, blank=True)
    active = models.BooleanField(default=True)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    next_fetch_at = models.DateTimeField(default=timezone.now)
    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="consecutive failed fetches")
    # Set while a fetcher holds it (the beat and `fetch_feeds --now` never fetch it at once);
    # a fetcher that died lets go when this passes.
    fetching_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "url"],
                                               name="subscription_campaign_url")]
        indexes = [models.Index(fields=["active", "next_fetch_at"])]

    def __str__(self) -> str:
        return f"feed #{self.pk} {self.url}"

    @property
    def schedule_text(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        seconds = self.interval_seconds or 0
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"every {seconds // size}{unit}"
        return f"every {seconds}s"

    @property
    def failing(self) -> bool:
        return self.failures >= settings.FEED_FAILURES_ALERT


class FeedFetch(models.Model):
    """One fetch of a subscription: what came back and what it did."""

    FETCHED = "fetched"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    OUTCOMES = [(FETCHED, "Fetched"), (UNCHANGED, "Unchanged"), (FAILED, "Failed")]

    subscription = models.ForeignKey(FeedSubscription, on_delete=models.CASCADE,
                                     related_name="fetches")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=OUTCOMES, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    bytes = models.BigIntegerField(default=0)
    feed_import = models.ForeignKey("FeedImport", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["subscription", "-id"])]

    def __str__(self) -> str:
        return f"fetch #{self.pk} of feed #{self.subscription_id}: {self.outcome}"


class ImportLineIssue(models.Model):
    """A line that was rejected (with its reason) or skipped as a duplicate."""

    feed_import = models.ForeignKey(FeedImport, on_delete=models.CASCADE, related_name="issues")
    line_no = models.PositiveIntegerField()
    content = models.CharField(max_length=200)
    reason = models.CharField(max_length=40)
    message = models.CharField(max_length=300)
    rejected = models.BooleanField(default=True)

    class Meta:
        ordering = ["feed_import", "line_no"]
        indexes = [models.Index(fields=["feed_import", "line_no"])]

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


class Host(models.Model):
    # No separate index on campaign: the unique (campaign, ip) constraint leads with it.
    # No database FK check either: it is a trigger per inserted row (seconds per million),
    # and hosts are only inserted by the import merge, which holds the campaign row locked
    # (FOR KEY SHARE, what the FK check itself would take). Django still cascades deletes.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="hosts", db_index=False,
        db_constraint=False,
    )
    ip = models.GenericIPAddressField(unpack_ipv4=False)
    kinds = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(
        max_length=20,
        choices=[(s, states.HOST_STATE_LABELS[s]) for s in states.HOST_STATES],
        default=states.IMPORTED,
    )
    country = models.CharField(max_length=2, blank=True)
    asn = models.PositiveBigIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    remediated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "ip"], name="host_unique_ip")]
        indexes = [
            models.Index(fields=["campaign", "state", "id"]),
            models.Index(fields=["campaign", "country", "id"]),
        ]

    def __str__(self) -> str:
        return self.ip

    def save(self, *args, **kwargs):
        # State changes go through campaign.hosts.transition_host (conditional UPDATE +
        # audit log); a plain save of an existing row must not smuggle one in.
        if self.pk and "update_fields" not in kwargs:
            raise PermissionDenied("save Host with update_fields; change state via transitions")
        super().save(*args, **kwargs)

    @property
    def kind_names(self) -> list[str]:
        return kinds.kind_names(self.kinds)


class Sighting(models.Model):
    """One feed line that named a host: the evidence that it is suspected at all.

    Sightings are written only by the set-based import merge, which joins them to hosts of
    the same transaction, so the database-level FK checks (a trigger per row: seconds per
    million lines) are left out; Django still cascades deletes.
    """

    # Indexes: (host, seen_at) below serves "sightings of a host"; every extra index on
    # this, the largest table, costs import time per line.
    host = models.ForeignKey(
        Host, on_delete=models.CASCADE, related_name="sightings", db_constraint=False,
        db_index=False,
    )
    feed_import = models.ForeignKey(
        FeedImport, on_delete=models.CASCADE, related_name="+", db_constraint=False,
        db_index=False,
    )
    line_no = models.PositiveIntegerField()
    seen_at = models.DateTimeField()
    port = models.PositiveIntegerField(null=True, blank=True)
    kind = models.PositiveSmallIntegerField()
    tag = models.CharField(max_length=100, blank=True)
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["host", "seen_at"])]

    def __str__(self) -> str:
        return f"{self.host_id} line {self.line_no}"


class ApiToken(models.Model):
    """A person's key to the API (campaign.tokens): only a hash of it is kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for")
    # The token's first characters, shown in the list so a person can tell keys apart, and
    # the index the look-up goes through; the rest is only ever compared as a hash.
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AuditEvent(models.Model):
    """Append-only record of who did what. Never updated, never deleted."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    action = models.CharField(max_length=60)
    # PROTECT: a campaign with history cannot be deleted (the trigger would refuse anyway;
    # this makes it a clear refusal instead of a database error).
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionDenied("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("audit events are append-only")
