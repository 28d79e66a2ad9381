"""Feed imports: create, queue and execute. Views, commands and the Celery task call these."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from campaign import kinds as kind_bits
from campaign.audit import record
from campaign.feeds.lines import head_lines, numbered_lines
from campaign.feeds.parsers import FORMATS, Entry, FormatError, Issue, detect_format, parse
from campaign.models import Campaign, Feed, FeedImport, ImportLineIssue
from campaign.outbound import FetchError, fetch_url_to_file, get_policy
from campaign.roles import has_perm
from campaign.signals import hosts_changed_on_commit
from campaign.staging import Staging

log = logging.getLogger(__name__)

CHUNK = 50_000
# Formats whose lines say what the host is suspected of (Entry.kind).
PER_LINE_KIND_FORMATS = frozenset({"intelmq"})
Progress = Callable[[FeedImport], None]


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def import_dir(import_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(import_id)


def _feed_for(source: str, fmt: str) -> Feed:
    if _is_url(source):
        feed, _ = Feed.objects.get_or_create(name=source[:200], defaults={"url": source[:2000],
                                                                          "format": fmt})
    else:
        feed, _ = Feed.objects.get_or_create(name=os.path.basename(source)[:200] or "upload",
                                             defaults={"format": fmt})
    return feed


def resolve_kind(campaign: Campaign, kind: str | None, fmt: str) -> int:
    """The kind an import's hosts are suspected of.

    Explicit `kind` wins; else the campaign's kind when it has just one; else proxy lists
    (ip:port, scan CSVs) are proxies. A plain list for a two-kind campaign must say.
    """
    if kind:
        if kind not in kind_bits.KIND_BITS:
            raise ValidationError(f"unknown kind {kind!r} (expected relay or proxy)",
                                  code="unknown_kind")
        bit = kind_bits.KIND_BITS[kind]
        if not campaign.kinds & bit:
            raise ValidationError(f"campaign {campaign.slug} does not target {kind} hosts",
                                  code="kind_not_targeted", params={"kind": kind})
        return bit
    if campaign.kinds in (kind_bits.RELAY, kind_bits.PROXY):
        return campaign.kinds
    if fmt in ("ipport", "csv"):
        return kind_bits.PROXY
    return 0  # decided after format detection, or refused then


def create_import(
    *,
    campaign: Campaign,
    actor=None,
    source: str,
    fmt: str = "auto",
    kind: str | None = None,
    upload: UploadedFile | BinaryIO | None = None,
    adopt: Path | None = None,
) -> FeedImport:
    """Validate the request and record a queued import; an upload is stored on disk.

    `adopt`: a file of ours that already holds the feed (a subscription's fetch of `source`),
    moved under the import instead of copied a second time.
    """
    if actor is not None and not has_perm(actor, "import_feed"):
        raise PermissionDenied(f"{actor} may not import feeds")
    if fmt != "auto" and fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r} (expected auto or {', '.join(FORMATS)})")
    if not source:
        raise ValidationError("give a file or a URL")
    if upload is None and not _is_url(source):
        path = Path(source)
        if not path.is_file():
            raise ValidationError(f"no such file: {source}")
        if path.stat().st_size > settings.FEED_MAX_BYTES:
            raise ValidationError(f"{source} is over the {settings.FEED_MAX_BYTES}-byte limit",
                                  code="too_large")
    if _is_url(source):
        parts = urlsplit(source)
        if not parts.hostname:
            raise ValidationError(f"not a URL: {source}")
    size = adopt.stat().st_size if adopt is not None else getattr(upload, "size", None)
    if size is not None and size > settings.FEED_MAX_BYTES:
        raise ValidationError(_too_large(), code="too_large")
    bit = resolve_kind(campaign, kind, fmt)
    if upload is None and not _is_url(source):
        # A worker (--background) may run in another directory: keep the absolute path.
        source = str(Path(source).resolve())
    stored_in: list[Path] = []
    try:
        with transaction.atomic():
            feed_import = FeedImport.objects.create(
                campaign=campaign,
                feed=_feed_for(source, fmt),
                source=source[:2000],
                requested_format=fmt,
                kind=bit,
                kind_given=bool(kind),
                created_by=actor if getattr(actor, "pk", None) else None,
            )
            if upload is not None or adopt is not None:
                target = import_dir(feed_import.pk)
                stored_in.append(target)
                target.mkdir(parents=True, exist_ok=True)
                stored = target / "feed"
                if adopt is not None:
                    shutil.move(adopt, stored)  # a rename on one file system, not a copy
                else:
                    size = 0
                    with stored.open("wb") as out:
                        chunks = upload.chunks() if hasattr(upload, "chunks") else iter(
                            lambda: upload.read(1 << 20), b"")
                        for chunk in chunks:
                            size += len(chunk)
                            if size > settings.FEED_MAX_BYTES:
                                raise ValidationError(_too_large(), code="too_large")
                            out.write(chunk)
                feed_import.stored_file = str(stored)
                feed_import.bytes_total = size
                feed_import.save(update_fields=["stored_file", "bytes_total"])
            record("import.create", actor=actor, campaign_id=campaign.pk, obj=feed_import,
                   data={"source": source[:500], "format": fmt, "kind": kind or ""})
    except BaseException:
        # The row is rolled back: the copy made so far (up to FEED_MAX_BYTES) must go too.
        for directory in stored_in:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return feed_import


def _too_large() -> str:
    return f"the file is over the {settings.FEED_MAX_BYTES}-byte limit"


def _discard(feed_import: FeedImport, *, upload: bool) -> None:
    """Delete the copies an import made under MEDIA_ROOT (never a path the CLI was given).

    The fetched copy of a URL is always safe to drop: a retry fetches it again. The stored
    upload is the only copy of what was uploaded, so it goes only when the import cannot be
    retried.
    """
    target = import_dir(feed_import.pk)
    (target / "fetched").unlink(missing_ok=True)
    if upload and feed_import.stored_file:
        Path(feed_import.stored_file).unlink(missing_ok=True)
    try:
        target.rmdir()  # only once empty: a kept upload keeps its directory
    except OSError:
        pass


class _CountingLines:
    """Wraps numbered_lines to remember the last physical line number and bytes read."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.last_line = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for line_no, text in numbered_lines(self.stream):
            self.last_line = line_no
            yield line_no, text


def _open_source(feed_import: FeedImport) -> BinaryIO:
    if feed_import.stored_file:
        return open(feed_import.stored_file, "rb")  # noqa: SIM115 - closed by the caller
    if _is_url(feed_import.source):
        target = import_dir(feed_import.pk)
        target.mkdir(parents=True, exist_ok=True)
        path = target / "fetched"
        with path.open("wb") as out:
            fetch_url_to_file(feed_import.source, out, max_bytes=settings.FEED_MAX_BYTES,
                              deadline=settings.FEED_FETCH_DEADLINE)
        return path.open("rb")
    return open(feed_import.source, "rb")  # noqa: SIM115


def run_import(import_id: int, *, progress: Progress | None = None) -> FeedImport:
    """Run one import to the end. Safe to call again after a crash: it starts over cleanly.

    Raises FormatError / FetchError after recording them on the import (status failed).
    """
    feed_import = FeedImport.objects.select_related("campaign").get(pk=import_id)
    if feed_import.status == FeedImport.DONE:
        return feed_import
    FeedImport.objects.filter(pk=import_id).update(
        status=FeedImport.RUNNING, started_at=timezone.now(), error="", bytes_read=0, lines=0
    )
    # A retried run starts from scratch: drop what a killed attempt left behind.
    ImportLineIssue.objects.filter(feed_import_id=import_id).delete()
    staging = Staging(import_id)
    try:
        with _open_source(feed_import) as stream:
            stream.seek(0, os.SEEK_END)
            total = stream.tell()
            stream.seek(0)
            fmt = feed_import.requested_format
            if fmt == "auto":
                fmt = detect_format(head_lines(stream))
            kind = feed_import.kind or resolve_kind(feed_import.campaign, None, fmt)
            if fmt in PER_LINE_KIND_FORMATS and not feed_import.kind_given:
                # Each line says what it lists; one that names neither kind is refused, not
                # taken as the campaign's kind (an IntelMQ `open-ipp` event is no proxy).
                kind = 0
            elif not kind:
                raise FormatError(FeedImport.kind_missing(feed_import.campaign))
            FeedImport.objects.filter(pk=import_id).update(
                detected_format=fmt, kind=kind, bytes_total=total
            )
            feed_import.detected_format, feed_import.kind = fmt, kind
            feed_import.bytes_total = total
            staging.create()
            rejected = _stream_into_staging(feed_import, stream, fmt, staging, progress)
        with transaction.atomic():
            counts = staging.merge(
                import_id=import_id, campaign_id=feed_import.campaign_id, kind=kind,
                now=timezone.now(),
            )
            feed_import.added = counts.added
            feed_import.known = counts.known
            feed_import.duplicates = counts.duplicates
            feed_import.rejected = rejected + counts.networks
            feed_import.status = FeedImport.DONE
            feed_import.bytes_read = total
            feed_import.finished_at = timezone.now()
            feed_import.save(update_fields=[
                "added", "known", "duplicates", "rejected", "status", "bytes_read",
                "finished_at", "lines",
            ])
            record("import.done", campaign_id=feed_import.campaign_id, obj=feed_import,
                   data={"summary": feed_import.summary_line})
    except (FormatError, FetchError, OSError) as exc:
        _discard(feed_import, upload=True)
        _fail(feed_import, str(exc))
        raise
    except (OperationalError, InterfaceError) as exc:
        # The task retries database errors: keep the upload it will read again.
        _discard(feed_import, upload=False)
        _fail(feed_import, f"internal error: {exc.__class__.__name__}: {exc}")
        raise
    except Exception as exc:
        _discard(feed_import, upload=True)
        _fail(feed_import, f"internal error: {exc.__class__.__name__}: {exc}")
        raise
    finally:
        staging.drop()
    hosts_changed_on_commit(feed_import.campaign_id)  # new hosts: cached counts are stale
    if progress:
        progress(feed_import)
    return feed_import


def _stream_into_staging(
    feed_import: FeedImport, stream: BinaryIO, fmt: str, staging: Staging,
    progress: Progress | None,
) -> int:
    lines = _CountingLines(stream)
    entries: list[Entry] = []
    issues: list[ImportLineIssue] = []
    rejected = 0

    def flush() -> None:
        nonlocal entries, issues
        staging.load(entries)
        ImportLineIssue.objects.bulk_create(issues, batch_size=5000)
        entries, issues = [], []
        feed_import.bytes_read = stream.tell()
        feed_import.lines = lines.last_line
        FeedImport.objects.filter(pk=feed_import.pk).update(
            bytes_read=feed_import.bytes_read, lines=feed_import.lines
        )
        if progress:
            progress(feed_import)

    kind_issue = _line_kind_check(feed_import.campaign)
    for item in parse(lines, fmt, get_policy()):
        if type(item) is Entry and (item.kind or not feed_import.kind):
            item = kind_issue(item)
        if type(item) is Entry:
            entries.append(item)
            if len(entries) >= CHUNK:
                flush()
        else:
            assert isinstance(item, Issue)
            rejected += 1
            issues.append(ImportLineIssue(
                feed_import_id=feed_import.pk, line_no=item.line_no,
                content=item.content[:200].replace("\x00", "\\0"), reason=item.reason,
                message=item.message[:300], rejected=True,
            ))
            if len(issues) >= CHUNK:
                flush()
    flush()
    return rejected


def _line_kind_check(campaign: Campaign) -> Callable[[Entry], Entry | Issue]:
    """For a line that names its own kind, or names none where the import states none: the
    entry, or why it is refused."""
    targeted = " and ".join(kind_bits.kind_names(campaign.kinds))

    def check(entry: Entry) -> Entry | Issue:
        content = f"{entry.ip}:{entry.port}" if entry.port else entry.ip
        if not entry.kind:
            classification = ", ".join(
                f"{key} {entry.evidence[key]!r}" for key in ("classification.type",
                                                             "classification.identifier")
                if entry.evidence and entry.evidence.get(key)) or "no classification"
            return Issue(entry.line_no, content, "no_kind",
                         f"{classification} names neither an open mail relay nor an open "
                         "proxy (import with a kind to take such lines as one)")
        if not campaign.kinds & kind_bits.KIND_BITS[entry.kind]:
            return Issue(entry.line_no, content, "kind_not_targeted",
                         f"classified as {entry.kind}; campaign {campaign.slug} targets "
                         f"{targeted} hosts only")
        return entry

    return check


def _fail(feed_import: FeedImport, message: str) -> None:
    log.warning("import %s failed: %s", feed_import.pk, message)
    feed_import.mark_failed(message)
