# Workspaces get a public host label (<slug>.<PUBLIC_DOMAIN>); old slugs redirect.

import re

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.utils.text import slugify

import accounts.models


def backfill(apps, schema_editor):
    Workspace = apps.get_model("accounts", "Workspace")
    taken = set()
    for workspace in Workspace.objects.order_by("pk"):
        base = re.sub(r"-{2,}", "-", slugify(workspace.name).replace("_", "-"))
        base = base[:40].strip("-")
        if len(base) < 3 or base in accounts.models.RESERVED_WORKSPACE_SLUGS:
            base = (base + "-workspace").strip("-")[:40]
        slug, n = base, 2
        while slug in taken or not accounts.models.WORKSPACE_SLUG_RE.match(slug):
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        workspace.slug = slug
        workspace.save(update_fields=["slug"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="workspace",
            name="slug",
            field=models.CharField(max_length=63, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="workspace",
            name="slug",
            field=models.CharField(
                default=accounts.models._workspace_slug, max_length=63, unique=True
            ),
        ),
        migrations.CreateModel(
            name="WorkspaceSlugAlias",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("slug", models.CharField(max_length=63, unique=True)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="slug_aliases",
                        to="accounts.workspace",
                    ),
                ),
            ],
        ),
    ]
