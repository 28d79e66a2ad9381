"""A large batch is rendered by forked worker processes: the letters come out exactly as a
build in one process writes them, errors included, and the database is never touched from
a worker (the builder's transaction carries on)."""

from __future__ import annotations

import pytest

from letters import batches
from letters.errors import LetterError
from letters.models import Letter, LetterSettings
from letters.parallel_render import workers_for

pytestmark = pytest.mark.django_db

LANGUAGES = ("en", "de", "fr", "ja", "es", "it")


def _findings(finding, n: int) -> None:
    for i in range(n):
        finding(email=f"abuse{i}@isp{i % 7}.example", language=LANGUAGES[i % len(LANGUAGES)],
                country="US")


def _texts(batch) -> dict[str, tuple[str, str, str]]:
    """Each letter's texts, its own signed link (the one part that differs per build) blanked."""
    texts = {}
    for letter in Letter.objects.filter(batch=batch):
        url = letter.context["recipient_url"]
        assert url in letter.body_text
        texts[letter.email] = (letter.subject, letter.body_text.replace(url, "URL"),
                               letter.body_html.replace(url, "URL"))
    return texts


def test_forked_workers_render_what_one_process_renders(campaign, bob, finding, settings):
    LetterSettings.objects.update_or_create(campaign=campaign, defaults={"bilingual": True})
    _findings(finding, 24)
    settings.LETTER_RENDER_PARALLEL_MIN = 10**9
    serial = batches.build_batch(campaign=campaign, actor=bob)
    expected = _texts(serial)
    Letter.objects.filter(batch=serial).delete()  # the same hosts, built again

    settings.LETTER_RENDER_PARALLEL_MIN = 2
    settings.LETTER_RENDER_WORKERS = 2
    assert workers_for(24) == 1  # fewer letters than one slice: not worth a fork
    from letters import parallel_render  # noqa: PLC0415
    parallel_render.SLICE, slice_was = 5, parallel_render.SLICE
    try:
        assert workers_for(24) == 2
        parallel = batches.build_batch(campaign=campaign, actor=bob)
    finally:
        parallel_render.SLICE = slice_was
    got = _texts(parallel)
    assert len(got) == 24 and got == expected
    assert {lang for lang in Letter.objects.filter(batch=parallel)
            .values_list("language", flat=True)} == set(LANGUAGES)


def test_a_worker_that_cannot_render_fails_the_build_and_stores_nothing(
        campaign, bob, finding, settings, monkeypatch):
    _findings(finding, 12)
    settings.LETTER_RENDER_PARALLEL_MIN = 2
    settings.LETTER_RENDER_WORKERS = 2
    from letters import catalogs, parallel_render  # noqa: PLC0415
    monkeypatch.setattr(parallel_render, "SLICE", 3)
    real = catalogs.require

    def no_japanese(language):
        if language == "ja":
            raise catalogs.MissingCatalog("catalog for ja missing; run manage.py "
                                          "compile_translations")
        return real(language)

    monkeypatch.setattr(catalogs, "require", no_japanese)  # inherited by the forked workers
    with pytest.raises(LetterError, match="catalog for ja missing"):
        batches.build_batch(campaign=campaign, actor=bob)
    assert not Letter.objects.exists()
