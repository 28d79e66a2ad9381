from django.db import migrations


def create_roles(apps, schema_editor):
    # The permissions of Campaign's Meta exist only after post_migrate; create what we need.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    from campaign.roles import ROLE_PERMISSIONS

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="campaign", codename__in=codenames)
        )


AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION campaign_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER campaign_auditevent_append_only
    BEFORE UPDATE OR DELETE ON campaign_auditevent
    FOR EACH ROW EXECUTE FUNCTION campaign_audit_append_only();
"""


def add_guard(apps, schema_editor):
    # Append-only is enforced by the database too, so no code path (admin, shell, a bug)
    # can rewrite history.
    schema_editor.execute(AUDIT_GUARD)


class Migration(migrations.Migration):
    dependencies = [
        ("campaign", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(add_guard, migrations.RunPython.noop),
    ]
