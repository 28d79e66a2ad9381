"""The campaign report: per country and language, what the letters achieved."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from django.db.models import Q

from campaign.agencies import agency_batches
from campaign.models import Agency, Campaign
from letters import outcomes, report_sql
from letters.models import LetterHost

COLUMNS = ("country", "language", "notified", "delivered", "bounced", "replied", "remediated",
           "remediation_rate", "median_days_to_remediation")


def campaign_report(campaign: Campaign, agency: Agency | None = None, *,
                    from_source: bool = False) -> list[dict]:
    """One row per (country, language) of the hosts written to, plus a total row.

    With an agency: only the letters that agency sent (a joint campaign's share of it).

    A host counts once, under the language of its first letter; a letter's outcome (delivered,
    bounced, replied) counts for each host it was about. Days to remediation run from the
    first letter that left to the re-test that found the host closed, per host to the tenth.

    The whole campaign's rows come from letters.outcomes' per-host rows (a million hosts in
    well under a second); `from_source` (tests, and the check of those rows) and an agency's
    share count from the source tables in one query.
    """
    if agency is None and not from_source:
        return _rows_from_cells(outcomes.report_cells(campaign.pk))
    scope = Q() if agency is None else agency_batches(agency.pk, via="letter__batch__")
    links = LetterHost.objects.filter(scope, letter__campaign=campaign, dropped=False,
                                      letter__sent_at__isnull=False)
    return report_sql.campaign_rows(links)


def _rows_from_cells(cells: list[tuple]) -> list[dict]:
    """Report rows from (country, language, delivered, bounced, replied, tenths, hosts)."""
    groups: dict[tuple[str, str], dict] = {}
    total = _Cell()
    for country, language, delivered, bounced, replied, tenths, n in cells:
        for cell in (groups.setdefault((country, language), _Cell()), total):
            cell.add(delivered, bounced, replied, tenths, n)
    out = [cell.row(country, language) for (country, language), cell in sorted(groups.items())]
    if out:
        out.append(total.row("all", "all"))
    return out


class _Cell:
    def __init__(self) -> None:
        self.counts = {"notified": 0, "delivered": 0, "bounced": 0, "replied": 0}
        self.tenths: dict[int, int] = defaultdict(int)

    def add(self, delivered: bool, bounced: bool, replied: bool, tenths: int | None,
            n: int) -> None:
        self.counts["notified"] += n
        self.counts["delivered"] += n if delivered else 0
        self.counts["bounced"] += n if bounced else 0
        self.counts["replied"] += n if replied else 0
        if tenths is not None:
            self.tenths[tenths] += n

    def row(self, country: str, language: str) -> dict:
        notified, remediated = self.counts["notified"], sum(self.tenths.values())
        median = outcomes.median_tenths(self.tenths)
        return {
            "country": country, "language": language, **self.counts, "remediated": remediated,
            "remediation_rate": round(remediated / notified, 4) if notified else 0.0,
            "median_days_to_remediation": round(median, 1) if median is not None else None,
        }


def as_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})
    return buffer.getvalue()


def as_table(rows: list[dict]) -> str:
    header = ("country", "lang", "notified", "delivered", "bounced", "replied", "remediated",
              "rate", "median_days")
    lines = ["{:<8}{:<9}{:>9}{:>10}{:>8}{:>8}{:>11}{:>8}{:>12}".format(*header)]
    for r in rows:
        median = "" if r["median_days_to_remediation"] is None else r["median_days_to_remediation"]
        lines.append("{:<8}{:<9}{:>9}{:>10}{:>8}{:>8}{:>11}{:>7.1%}{:>12}".format(
            r["country"], r["language"], r["notified"], r["delivered"], r["bounced"],
            r["replied"], r["remediated"], r["remediation_rate"], median))
    return "\n".join(lines)
