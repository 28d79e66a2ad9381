# Hand-written: probe, contact runs and feed imports share campaign.jobs.Job.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("probes", "0005_contactrun_heartbeat"),
    ]

    operations = [
        # Every job says who started it the same way (FeedImport and ContactRun already did).
        migrations.RenameField(
            model_name="proberun",
            old_name="started_by",
            new_name="created_by",
        ),
        # The shared status column is as wide as the other jobs' (10).
        migrations.AlterField(
            model_name="contactrun",
            name="status",
            field=models.CharField(
                choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done"),
                         ("failed", "Failed")],
                default="queued", max_length=10,
            ),
        ),
    ]
