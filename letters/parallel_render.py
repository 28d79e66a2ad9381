"""Rendering a large batch's letters on every CPU.

Rendering is the bulk of building a batch (sandboxed Jinja, three templates per letter and
language). A batch of at least LETTER_RENDER_PARALLEL_MIN letters is rendered by forked
worker processes: they inherit the letters and the renderer as they are (nothing to pickle
on the way in, nothing to load from the database), render a slice each, and send back only
the texts. They never touch the database: the transaction and its connection stay with the
builder, and a forked worker leaves with os._exit (multiprocessing's way), so the
connection it inherited is never closed from the child. Errors (a missing catalog, a
template over its budget) come back and are raised here, as in a serial build.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence

from django.conf import settings

from letters.models import Letter
from letters.rendering import LetterRenderer
from letters.template_store import render_letter

SLICE = 250
# Set only while a pool runs: what the forked workers read their letters from.
_JOB: tuple[Sequence[Letter], LetterRenderer] | None = None


def _render_slice(bounds: tuple[int, int]) -> list[tuple[str, str, object]]:
    assert _JOB is not None, "a render worker runs only inside render_letters"
    letters, renderer = _JOB
    rendered = []
    for letter in letters[bounds[0]:bounds[1]]:
        render_letter(letter, renderer)
        rendered.append((letter.subject, letter.body_text, letter.body_html))
    return rendered


def workers_for(count: int) -> int:
    """How many processes render `count` letters (1: in this process)."""
    if count < settings.LETTER_RENDER_PARALLEL_MIN or "fork" not in \
            multiprocessing.get_all_start_methods():
        return 1
    wanted = settings.LETTER_RENDER_WORKERS or os.cpu_count() or 1
    return max(1, min(wanted, (count + SLICE - 1) // SLICE))


def render_letters(letters: Sequence[Letter], renderer: LetterRenderer) -> None:
    """Render every letter (subject and bodies), in parallel when the batch is large."""
    workers = workers_for(len(letters))
    if workers == 1:
        for letter in letters:
            render_letter(letter, renderer)
        return
    global _JOB
    _JOB = (letters, renderer)
    try:
        slices = [(start, min(start + SLICE, len(letters)))
                  for start in range(0, len(letters), SLICE)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_render_slice, slices)
    finally:
        _JOB = None
    for (start, _end), rendered in zip(slices, results, strict=True):
        for offset, (subject, text, html) in enumerate(rendered):
            letter = letters[start + offset]
            letter.subject, letter.body_text, letter.body_html = subject, text, html
