from django.apps import AppConfig


class LettersConfig(AppConfig):
    name = "letters"
    verbose_name = "Letters"

    def ready(self) -> None:
        # Connect the anymail tracking and inbound receivers.
        from django.core import checks

        # Importing outcomes registers its Celery task (the beat's refresh of the report rows).
        from letters import outcomes, receivers  # noqa: F401
        from letters.catalogs import check_catalogs

        # Compiled catalogs missing or stale: letters would silently go out in English.
        checks.register(check_catalogs, checks.Tags.translation)
