"""Print-ready PDFs of postal letters, and the CSV of their addresses for the print room.

Each letter is the text the reviewer approved (its stored sections: the same sandboxed,
translated templates as the e-mails) inside a fixed print layout: the agency's letterhead,
the recipient's address where a window envelope shows it, the date in the letter's language,
the reference, and the recipient page's short link as text and as a QR code. Two formats:

- `din5008`: A4, DIN 5008 form B. Address field 45 mm from the top and 20 mm from the left,
  85 × 45 mm (its top 5 mm carry the return address), for C5/6 and DL window envelopes
  (folded at 105 and 210 mm: the fold marks are printed, with the hole mark at 148.5 mm).
- `us10`: US Letter for a #10 window envelope (window 4½ × 1⅛ in, ⅞ in from the left):
  the address 1.85 in from the top, 0.875 in from the left, folded in thirds; no return
  line (a #10 envelope carries the sender's address printed, top left).

Text is laid out by WeasyPrint (Pango): Noto fonts (installed with the system packages) give
every script of the 21 languages its glyphs; CJK text takes the Noto CJK face of its language.
The renderer fetches nothing: a template that names an image or a stylesheet by URL gets
nothing (no file, no internal address, no outside request), and only our own data: URIs (the
QR codes) load.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date

import segno
from babel import dates as babel_dates
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from pypdf import PdfReader, PdfWriter

from campaign.models import Agency
from letters import shortlinks
from letters.errors import LetterError
from letters.languages import babel_locale
from letters.models import Letter
from letters.postal.pdf_worker import render_chunk

# Countries on US Letter paper with #10 envelopes; everyone else A4 (ISO 216).
LETTER_PAPER_COUNTRIES = frozenset({"US", "CA", "MX", "PH", "CL", "CO", "VE", "GT", "CR", "PR"})
# Letters laid out per WeasyPrint document (see render_pdf).
CHUNK = 250


@dataclass(frozen=True)
class PageFormat:
    """A sheet and where its parts go, in millimetres from the sheet's top-left corner."""

    name: str
    label: str
    page: str  # CSS page size
    top: float  # margins
    right: float
    bottom: float
    left: float
    window_top: float  # the address field
    window_left: float
    window_width: float
    window_height: float
    return_height: float  # the sender's line at the top of the field (0: none)
    text_top: float  # where the text of the first page starts
    folds: tuple[float, ...]
    hole: float  # the punch mark, half way down

    def css(self) -> dict[str, str]:
        """Lengths for the template, the positioned ones relative to the page's content box
        (where each letter's first page starts)."""
        mm = "{:.2f}mm".format
        return {
            "page": self.page, "margin": " ".join(mm(x) for x in (
                self.top, self.right, self.bottom, self.left)),
            "window_top": mm(self.window_top - self.top),
            "window_left": mm(self.window_left - self.left),
            "window_width": mm(self.window_width), "window_height": mm(self.window_height),
            "return_height": mm(self.return_height), "return_line": self.return_height > 0,
            # Lines that fit at 10 pt (4.2 mm each); more are set smaller.
            "address_lines": int((self.window_height - self.return_height - 1) // 4.3),
            "address_height": mm(self.window_height - self.return_height),
            "text_top": mm(self.text_top - self.top),
            "info_left": mm(self.window_left + self.window_width + 10 - self.left),
            "folds": [mm(x - self.top) for x in self.folds], "hole": mm(self.hole - self.top),
            "mark_left": mm(4 - self.left),
        }


INCH = 25.4
FORMATS = {
    "din5008": PageFormat(
        "din5008", "A4, DIN 5008 form B (C5/6, DL window envelope)", page="A4",
        top=20, right=20, bottom=20, left=25,
        window_top=45, window_left=20, window_width=85, window_height=45,
        return_height=5, text_top=98.5, folds=(105, 210), hole=148.5),
    "us10": PageFormat(
        "us10", "US Letter (#10 window envelope)", page="letter",
        top=0.6 * INCH, right=0.9 * INCH, bottom=0.7 * INCH, left=1 * INCH,
        window_top=1.85 * INCH, window_left=0.875 * INCH, window_width=4 * INCH,
        window_height=1.1 * INCH, return_height=0, text_top=3.7 * INCH,
        folds=(11 / 3 * INCH, 22 / 3 * INCH), hole=5.5 * INCH),
}


def page_format(agency: Agency | None) -> PageFormat:
    if agency is not None and agency.postal_format in FORMATS:
        return FORMATS[agency.postal_format]
    country = (agency.country if agency else "").upper()
    return FORMATS["us10" if country in LETTER_PAPER_COUNTRIES else "din5008"]


def _qr_data_uri(url: str) -> str:
    # Medium error correction survives a smudge; a quiet zone of 4 modules is the standard's.
    return segno.make(url, error="m").svg_data_uri(scale=4, border=4, dark="#000")


def _return_line(letter: Letter) -> str:
    """One line of the sender's letterhead, as DIN 5008 prints above the address."""
    agency = letter.context.get("agency", {})
    lines = [" ".join(x.split()) for x in (agency.get("letterhead") or "").splitlines()]
    lines = [x for x in lines if x] or [agency.get("name", "")]
    return " · ".join(lines)[:160]


def _letter_page(letter: Letter, printed_on: date) -> dict:
    agency = letter.context.get("agency", {})
    url = shortlinks.short_url(letter.short_code) if letter.short_code else ""
    return {
        "id": letter.pk,
        "lang": letter.language,
        "reference": shortlinks.display_code(letter.short_code) if letter.short_code
        else f"L{letter.pk}",
        "letterhead": [x for x in (agency.get("letterhead") or agency.get("name", "")
                                   ).splitlines() if x.strip()],
        "return_line": _return_line(letter),
        "address": [x for x in letter.postal_address.splitlines() if x.strip()],
        "date": babel_dates.format_date(printed_on, format="long",
                                        locale=babel_locale(letter.language)),
        "subject": letter.subject,
        "url": url,
        "qr": _qr_data_uri(url) if url else "",
        # The approved text, from the sandboxed autoescaping templates (letters.rendering).
        "body": mark_safe(letter.body_html),  # noqa: S308
    }


def print_html(letters: Iterable[Letter], *, fmt: PageFormat, draft: bool = False,
               printed_on: date | None = None) -> str:
    printed_on = printed_on or timezone.localdate()
    return render_to_string("letters/print/letters.html", {
        "letters": [_letter_page(x, printed_on) for x in letters],
        "fmt": fmt.css(), "draft": draft,
    })


@dataclass(frozen=True)
class PrintedPdf:
    data: bytes
    pages: int
    letters: int


def _chunks(letters: list[Letter], size: int) -> Iterator[list[Letter]]:
    for start in range(0, len(letters), size):
        yield letters[start:start + size]


def _workers(chunks: int) -> int:
    wanted = settings.POSTAL_PDF_WORKERS or os.cpu_count() or 1
    return max(1, min(int(wanted), chunks))


def render_pdf(letters: Iterable[Letter], *, fmt: PageFormat, draft: bool = False,
               printed_on: date | None = None) -> PrintedPdf:
    """One PDF of the letters, each starting on a new page (print it single-sided: a letter
    may end on an odd page).

    Long batches are laid out in chunks, on every core (POSTAL_PDF_WORKERS processes, default
    one per CPU): layout is WeasyPrint's slow part, and grows faster than the page count in
    one big document. The chunks' PDFs are then joined in order (pypdf).
    """
    letters = list(letters)
    if not letters:
        raise LetterError("no postal letters to print")
    pages_html = [print_html(part, fmt=fmt, draft=draft, printed_on=printed_on)
                  for part in _chunks(letters, CHUNK)]
    workers = _workers(len(pages_html))
    if workers == 1:
        parts = [render_chunk(html) for html in pages_html]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(pool.map(render_chunk, pages_html))
    if len(parts) == 1:
        data, pages = parts[0]
        return PrintedPdf(data=data, pages=pages, letters=len(letters))
    writer = PdfWriter()
    for data, _pages in parts:
        writer.append(PdfReader(io.BytesIO(data)))
    out = io.BytesIO()
    writer.write(out)
    return PrintedPdf(data=out.getvalue(), pages=sum(p for _d, p in parts),
                      letters=len(letters))


ADDRESS_LINES = 8
CSV_COLUMNS = ("letter", "reference", "kind", "language", "hosts", "short_url", "address",
               *(f"line_{i}" for i in range(1, ADDRESS_LINES + 1)))


def _cell(value: object) -> str:
    # Registry data is written by strangers: a cell a spreadsheet would run as a formula
    # (=, +, -, @, or a leading tab or CR) is made plain text.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def addresses_csv(letters: Iterable[Letter]) -> str:
    """The print room's mail-merge list: one row per letter, the address as lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for letter in letters:
        lines = [x for x in letter.postal_address.splitlines() if x.strip()][:ADDRESS_LINES]
        writer.writerow([_cell(v) for v in (
            letter.pk, shortlinks.display_code(letter.short_code), letter.kind, letter.language,
            len(letter.context.get("hosts", [])),
            shortlinks.short_url(letter.short_code) if letter.short_code else "",
            "\n".join(lines), *lines, *[""] * (ADDRESS_LINES - len(lines)))])
    return buffer.getvalue()
