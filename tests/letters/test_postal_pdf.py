"""The printed letters themselves, read back with poppler (pdftotext, pdffonts, pdftoppm):
every script of the letters and of the addresses prints with real glyphs of a Noto face, the
address sits inside the envelope's window, the QR code is on the page, and printing loads
nothing a template names by URL (no file, no request to any address)."""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
from pathlib import Path

import pytest
from django.utils import translation

from campaign.models import Agency
from letters import template_store
from letters.postal import printing
from letters.postal import services as postal
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db

MM = 72 / 25.4  # PDF points per millimetre


def pdf_of(campaign, bob, rita, tmp_path: Path) -> tuple[Path, object]:
    batch = approved_batch(campaign, bob, rita)
    printed = postal.print_batch(batch=batch, actor=bob)
    path = tmp_path / "letters.pdf"
    path.write_bytes(printed.data)
    return path, printed


def text_of(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def fonts_of(path: Path) -> list[str]:
    lines = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True,
                           text=True).stdout.splitlines()[2:]
    return [line.split()[0].split("+")[-1] for line in lines]


def greeting(language: str) -> str:
    with translation.override(language.lower()):
        return translation.gettext("Dear network administrator,")


@pytest.mark.parametrize(("language", "country", "face"), [
    ("ja", "JP", "Noto-Sans-CJK-JP"), ("zh-Hans", "CN", "Noto-Sans-CJK-SC"),
    ("zh-Hant", "TW", "Noto-Sans-CJK-TC"), ("ko", "KR", "Noto-Sans-CJK-KR"),
    ("bg", "BG", "Noto-Sans"), ("sr", "RS", "Noto-Sans"), ("hu", "HU", "Noto-Sans"),
])
def test_each_script_prints_with_real_glyphs(campaign, bob, rita, postal_finding, tmp_path,
                                             language, country, face):
    postal_finding(language=language, country=country)
    path, printed = pdf_of(campaign, bob, rita, tmp_path)
    text = text_of(path)
    assert greeting(language) != "Dear network administrator,"  # a translated catalog
    assert greeting(language) in text
    assert "�" not in text  # no replacement character: every glyph was found
    fonts = fonts_of(path)
    assert face in fonts, fonts
    assert all(name.startswith("Noto-") for name in fonts), fonts  # no stray fallback face
    assert printed.pages == int(re.search(r"Pages:\s+(\d+)", subprocess.run(
        ["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout)[1])


def test_greek_and_cyrillic_addresses_print_as_written(campaign, bob, rita, postal_finding,
                                                       tmp_path):
    postal_finding(address="Ελληνικά Δίκτυα Α.Ε.\nΟδός Ερμού 25\n105 63 Αθήνα\nGR")
    postal_finding(address="ООО «Сеть»\nул. Тверская, д. 7\n125009 Москва\nRU")
    path, _ = pdf_of(campaign, bob, rita, tmp_path)
    text = text_of(path)
    for line in ("Ελληνικά Δίκτυα Α.Ε.", "Οδός Ερμού 25", "ООО «Сеть»", "ул. Тверская, д. 7"):
        assert line in text


def _words(path: Path) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) in millimetres from the first page's top-left corner."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"],
                          check=True, capture_output=True, text=True).stdout
    return [(w, *(float(v) / MM for v in box)) for *box, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        html)]


@pytest.mark.parametrize(("fmt", "window"), [
    # (left, top, right, bottom) of the envelope window, in mm from the sheet's corner
    ("din5008", (20, 45, 105, 90)),
    ("us10", (0.875 * 25.4, 1.85 * 25.4, 4.875 * 25.4, 2.95 * 25.4)),
])
def test_the_address_sits_in_the_envelope_window(campaign, bob, rita, postal_finding,
                                                 tmp_path, fmt, window):
    Agency.objects.filter(pk=campaign.agency_id).update(postal_format=fmt)
    postal_finding()
    path, _ = pdf_of(campaign, bob, rita, tmp_path)
    words = _words(path)
    left, top, right, bottom = window
    for wanted in ("Harborline", "Pier", "Norfolk,", "States"):
        (_, x0, y0, x1, y1), *_ = [w for w in words if w[0] == wanted]
        assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom, (wanted, x0, y0)
    # The text starts below the window.
    body = [w for w in words if w[0] == "Dear"]
    assert body and body[0][2] > bottom


def _gray_page(path: Path, dpi: int = 40) -> tuple[int, int, bytes]:
    pgm = subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), "-f", "1", "-l", "1", str(path)],
                         check=True, capture_output=True).stdout
    magic, width, height, _maxval, pixels = pgm.split(maxsplit=4)
    assert magic == b"P5"
    return int(width), int(height), pixels


def test_the_page_shows_a_qr_code_beside_the_window_and_white_margins(campaign, bob, rita,
                                                                     postal_finding, tmp_path):
    Agency.objects.filter(pk=campaign.agency_id).update(postal_format="din5008")
    postal_finding()
    path, _ = pdf_of(campaign, bob, rita, tmp_path)
    width, height, pixels = _gray_page(path)
    px = width / 210  # pixels per mm on A4

    def darkness(x0: float, y0: float, x1: float, y1: float, below: int = 128) -> float:
        """The share of pixels darker than `below` in a rectangle (mm)."""
        cells = [pixels[y * width + x] for y in range(int(y0 * px), int(y1 * px) + 1)
                 for x in range(int(x0 * px), int(x1 * px) + 1)]
        return sum(1 for c in cells if c < below) / len(cells)

    qr = [w for w in _words(path) if w[0].startswith("http://")][0]
    # The QR code: the square just above the printed link, 24 mm wide, about half dark.
    assert 0.25 < darkness(qr[1] + 5, qr[2] - 22, qr[1] + 20, qr[2] - 5) < 0.75
    assert darkness(193, 30, 209, 280) == 0  # the right margin
    assert darkness(0, 0, 15, 40) == 0  # the top-left corner (no fold mark up there)
    # The fold marks, a hair line 105 mm and 210 mm down in the left margin: grey at 40 dpi.
    assert darkness(3, 104.5, 9, 105.5, below=250) > 0
    assert darkness(3, 209.5, 9, 210.5, below=250) > 0
    assert darkness(3, 120, 9, 140, below=250) == 0


def test_printing_loads_nothing_a_template_names(campaign, bob, rita, ada, postal_finding,
                                                 tmp_path, settings):
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE")
    try:
        source = (Path(template_store.__file__).parent / "jinja" / "first_notice.body.html"
                  ).read_text()
        source = (f'<img src="http://127.0.0.1:{port}/tracker.png">'
                  f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">'
                  f'<img src="file://{secret}"><object data="file://{secret}"></object>'
                  f'<iframe src="file://{secret}"></iframe>' + source)
        template_store.save_template(name="first_notice.body.html", source=source, actor=ada)
        postal_finding()
        path, _ = pdf_of(campaign, bob, rita, tmp_path)
    finally:
        server.shutdown()
    assert seen == []
    assert "TOP-SECRET-LINE" not in text_of(path)
    assert b"TOP-SECRET-LINE" not in path.read_bytes()


def test_a_long_batch_is_laid_out_in_chunks_in_parallel_and_joined_in_order(
        monkeypatch, settings, campaign, bob, rita, postal_finding, tmp_path):
    # Five letters: three chunks, laid out by two fresh worker processes, joined in one PDF.
    monkeypatch.setattr(printing, "CHUNK", 2)
    settings.POSTAL_PDF_WORKERS = 2
    for i in range(5):
        postal_finding(address=f"Owner {i}\nStreet {i}\nTown\nUS")
    path, printed = pdf_of(campaign, bob, rita, tmp_path)
    text = text_of(path)
    assert printed.letters == 5
    # In batch order, each letter starting on its own page.
    pages = text.split("\f")
    owners = [re.search(r"^Owner (\d)$", page, re.M) for page in pages]
    assert [int(m[1]) for m in owners if m] == [0, 1, 2, 3, 4]
    assert printed.pages == len(pages) - 1
