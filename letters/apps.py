from django.apps import AppConfig


class LettersConfig(AppConfig):
    name = "letters"
    verbose_name = "Letters"

    def ready(self) -> None:
        # Connect the anymail tracking and inbound receivers.
        from letters import receivers  # noqa: F401
