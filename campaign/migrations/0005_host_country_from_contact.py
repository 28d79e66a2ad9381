"""Back-fill: hosts the feed gave no country take their abuse contact's (network) country.

From now on contact resolution does this as it goes (campaign.hosts.fill_countries); hosts
resolved before kept an empty country, shown as "Unknown" on the dashboard. On PostgreSQL the
letters outcome triggers queue every host written here, so the report follows.
"""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Upper


def fill(apps, schema_editor):
    Host = apps.get_model("campaign", "Host")
    Contact = apps.get_model("probes", "Contact")
    country = Contact.objects.filter(host_id=OuterRef("pk")).values(code=Upper("country"))[:1]
    Host.objects.filter(country="", contact__isnull=False).exclude(
        contact__country=""
    ).update(country=Subquery(country))


class Migration(migrations.Migration):

    dependencies = [
        ("campaign", "0004_audit_campaign_protect"),
        ("probes", "0001_initial"),
    ]

    # Reversing keeps the countries: a host's country from its network stays true.
    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
