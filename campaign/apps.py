from django.apps import AppConfig


class CampaignConfig(AppConfig):
    name = "campaign"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        # The role groups follow campaign.roles after every migrate, not only on a fresh
        # install: an upgrade gives existing admins the admin pages their role now opens.
        from django.db.models.signals import post_migrate

        from campaign import dashboard, signals
        from campaign.roles import refresh_roles

        post_migrate.connect(refresh_roles, sender=self, dispatch_uid="campaign.refresh_roles")
        # The core says when hosts changed; the dashboard (above it) drops its cached counts.
        # Importing the dashboard also registers its Celery task (campaign.refresh_dashboard).
        signals.hosts_changed.connect(dashboard.on_hosts_changed,
                                      dispatch_uid="campaign.dashboard.on_hosts_changed")
