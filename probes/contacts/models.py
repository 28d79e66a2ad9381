"""Abuse contacts, the network cache and the suppression list."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.utils import timezone

from campaign.jobs import Job

__all__ = ["NetworkRecord", "Contact", "ContactOverride", "Suppression", "ContactRun",
           "CidrField", "covering_network"]


class CidrField(models.Field):
    """A PostgreSQL `cidr` column, read and written as its text (`203.0.113.0/24`)."""

    description = "An IPv4 or IPv6 network"

    def db_type(self, connection) -> str:
        return "cidr"

    def get_prep_value(self, value):
        return None if value is None else str(value)

    def from_db_value(self, value, expression, connection):
        return value


@CidrField.register_lookup
class CoversAddress(models.Lookup):
    """`network__covers=ip`: the network holds the address (`>>=`, served by the GiST index)."""

    lookup_name = "covers"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} >>= {rhs}::inet", [*lhs_params, *rhs_params]


def covering_network(start: str, end: str) -> str:
    """The smallest network holding both addresses (PostgreSQL's `inet_merge`)."""
    first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
    if first.version != last.version:
        raise ValueError(f"{start} and {end} are not of one IP version")
    host_bits = (int(first) ^ int(last)).bit_length()
    prefix = first.max_prefixlen - host_bits
    return str(ipaddress.ip_network(f"{first}/{prefix}", strict=False))


class NetworkRecord(models.Model):
    """One registry answer, cached for every address in its range until it expires.

    A registry range need not be one CIDR block (ARIN hands out `start - end` ranges), so
    the exact bounds are kept as `inet` and `network` is the smallest block holding them:
    "which cached network holds this address" is a GiST look-up on `network`, refined by the
    bounds.
    """

    FOUND = "found"
    NO_CONTACT = "no_contact"
    STATUS_CHOICES = [(FOUND, "Contact found"), (NO_CONTACT, "No contact")]

    network = CidrField()
    start_address = models.GenericIPAddressField()
    end_address = models.GenericIPAddressField()
    cidrs = models.JSONField(default=list, blank=True)
    name = models.CharField(max_length=100, blank=True)
    handle = models.CharField(max_length=100, blank=True)
    parent_handle = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True)
    organisation = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=FOUND)
    email = models.EmailField(blank=True)
    confidence = models.CharField(max_length=10, blank=True)
    role = models.CharField(max_length=20, blank=True)
    contact_handle = models.CharField(max_length=100, blank=True)
    candidates = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=10, blank=True, help_text="rdap or whois")
    server = models.CharField(max_length=300, blank=True)
    # The registry's own words, for audit: what we were told, not what we made of it.
    raw = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [GistIndex(fields=["network"], opclasses=["inet_ops"],
                             name="probes_network_gist")]

    def __str__(self) -> str:
        return self.display_range

    @property
    def display_range(self) -> str:
        if self.cidrs:
            return ", ".join(self.cidrs)
        if self.start_address == self.end_address:
            return self.start_address
        return f"{self.start_address} - {self.end_address}"

    def holds(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        start = ipaddress.ip_address(self.start_address)
        end = ipaddress.ip_address(self.end_address)
        return start.version == ip.version and start <= ip <= end


class Contact(models.Model):
    """Where to write about one host, with the evidence of where the answer came from."""

    RESOLVED = "resolved"
    NO_CONTACT = "no_contact"
    FAILED = "failed"  # temporary: the host stays queued and is tried again later
    SUPPRESSED = "suppressed"
    STATUS_CHOICES = [
        (RESOLVED, "Resolved"), (NO_CONTACT, "No contact"), (FAILED, "Failed, will retry"),
        (SUPPRESSED, "On the do-not-contact list"),
    ]

    host = models.OneToOneField("campaign.Host", on_delete=models.CASCADE, related_name="contact")
    network = models.ForeignKey(
        NetworkRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    status = models.CharField(max_length=12, choices=STATUS_CHOICES)
    email = models.EmailField(blank=True)
    organisation = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True)
    language = models.CharField(max_length=10, default="en")
    language_overridden = models.BooleanField(default=False)
    source = models.CharField(max_length=10, blank=True, help_text="rdap, whois or manual")
    server = models.CharField(max_length=300, blank=True)
    handle = models.CharField(max_length=100, blank=True)
    confidence = models.CharField(max_length=10, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A manual contact is kept through later look-ups until staff change it again.
    manual = models.BooleanField(default=False)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_reason = models.TextField(blank=True)
    overridden_at = models.DateTimeField(null=True, blank=True)
    # The fallback chain walked so far (probes/contacts/fallback.py), oldest first:
    # [{"email", "role", "source", "why", "replaced", "at"}].
    fallbacks = models.JSONField(default=list, blank=True)
    # Where a postal letter goes once no e-mail address is left (probes/contacts/postal.py):
    # the name and lines as the registry gives them, one per line; empty if it gives none.
    postal_address = models.TextField(blank=True)
    # Set when a recipient says "not my server / wrong contact" on their letter's page.
    review_requested_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.host_id}: {self.email or self.status}"


class ContactOverride(models.Model):
    """Append-only history of hand-set contacts: who changed what, when and why."""

    host = models.ForeignKey("campaign.Host", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    language = models.CharField(max_length=10, blank=True)
    previous_email = models.EmailField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.host_id} → {self.email} by {self.created_by_id}"


class Suppression(models.Model):
    """Do not contact: one address, or a whole domain (and its subdomains)."""

    ADDRESS = "address"
    DOMAIN = "domain"
    KIND_CHOICES = [(ADDRESS, "Address"), (DOMAIN, "Domain")]

    value = models.CharField(max_length=254, unique=True)
    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    reason = models.TextField()
    source = models.CharField(max_length=20, default="manual",
                              help_text="manual, bounce or complaint")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    # Whose staff or letters put it here. Sending honours every entry (do-not-contact is
    # for the whole installation), but an agency's staff list only their own entries and
    # those made by people bound to no agency: reasons name other agencies' letters.
    agency = models.ForeignKey(
        "campaign.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["value"]

    def __str__(self) -> str:
        return self.value


class ContactRun(Job):
    """One resolve_contacts run (foreground or a worker's), with progress for the UI."""

    detail_url_name = "contact_run_detail"
    status_url_name = "contact_run_status"
    title = "Contact resolution"
    progress_label = "Hosts resolved"
    progress_unit = "host"
    progress_verb = "looked up"

    PENDING = "pending"  # verified_open hosts without a fresh contact
    ALL = "all"
    DUE = "due"  # pending hosts whose retry time has come (the beat's run)
    RETRY = "retry"  # only failed look-ups whose retry time has come (no new hosts)
    MODE_CHOICES = [(PENDING, "Pending hosts"), (ALL, "Every host"), (DUE, "Due retries"),
                    (RETRY, "Failed look-ups, retried")]

    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="contact_runs"
    )
    mode = models.CharField(max_length=8, choices=MODE_CHOICES, default=PENDING)
    task_id = models.CharField(max_length=64, blank=True)
    hosts_total = models.PositiveIntegerField(default=0)
    hosts_done = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    queries = models.PositiveIntegerField(default=0)
    # Bumped with every progress report: a "running" run whose heartbeat stopped belongs to
    # a worker that died (the beat's own runs are not redelivered, they run inside its task).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"contact run #{self.pk} ({self.campaign_id})"

    @property
    def summary_line(self) -> str:
        return (f"hosts={self.hosts_total} resolved={self.resolved} failed={self.failed} "
                f"queries={self.queries}")

    @property
    def progress_done(self) -> int:
        return self.hosts_done

    @property
    def progress_total(self) -> int:
        return self.hosts_total

    @property
    def count_tiles(self) -> list[dict]:
        return [{"key": key, "label": label, "n": getattr(self, key), "field": key}
                for key, label in (("resolved", "Resolved"), ("failed", "Failed"),
                                   ("queries", "Registry queries"))]

    def extra_status_data(self) -> dict:
        return {"resolved": self.resolved, "failed": self.failed, "queries": self.queries}
