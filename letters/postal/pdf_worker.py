"""Laying out one chunk of printed letters, in a process of its own.

Imports WeasyPrint and nothing of Django: the print job's worker processes are started
fresh (spawn), never forked from a web or Celery process whose database connections they
would share.
"""

from __future__ import annotations


def render_chunk(html: str) -> tuple[bytes, int]:
    """(the PDF, its page count) of one chunk's HTML; fetches nothing but data: URIs."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
    document = HTML(string=html, url_fetcher=fetcher).render()
    return document.write_pdf(), len(document.pages)
