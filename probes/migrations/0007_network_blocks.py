# Hand-written: the network cache's hex range keys become a `cidr` block with a GiST index
# (PostgreSQL is the only database); the exact `inet` bounds stay as they were.

import django.contrib.postgres.indexes
from django.db import migrations

import probes.contacts.models


class Migration(migrations.Migration):

    dependencies = [
        ("probes", "0006_jobs"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="networkrecord",
            name="probes_netw_ip_vers_c7feda_idx",
        ),
        migrations.AddField(
            model_name="networkrecord",
            name="network",
            field=probes.contacts.models.CidrField(null=True),
        ),
        # inet_merge: the smallest network holding both bounds, as covering_network() does.
        migrations.RunSQL(
            "UPDATE probes_networkrecord SET network = inet_merge(start_address, end_address)",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="networkrecord",
            name="network",
            field=probes.contacts.models.CidrField(),
        ),
        migrations.RemoveField(model_name="networkrecord", name="ip_version"),
        migrations.RemoveField(model_name="networkrecord", name="start_key"),
        migrations.RemoveField(model_name="networkrecord", name="end_key"),
        migrations.AddIndex(
            model_name="networkrecord",
            index=django.contrib.postgres.indexes.GistIndex(
                fields=["network"], name="probes_network_gist", opclasses=["inet_ops"]
            ),
        ),
    ]
