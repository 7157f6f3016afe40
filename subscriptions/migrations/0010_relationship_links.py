# Relationship requests are accepted through a signed link e-mailed to the customer (TF1): where it goes,
# and until when it works.

from datetime import timedelta

from django.db import migrations, models

# subscriptions.transfers.RELATIONSHIP_LINK_LIFETIME when this migration was written (a migration keeps its own
# copy: the constant may change later, the requests already sent keep the expiry they were given).
LINK_LIFETIME = timedelta(days=14)


def give_sent_requests_an_expiry(apps, schema_editor):
    RelationshipRequest = apps.get_model("subscriptions", "RelationshipRequest")
    for relationship in RelationshipRequest.objects.filter(expires_at__isnull=True).only("pk", "created_at"):
        relationship.expires_at = relationship.created_at + LINK_LIFETIME
        relationship.save(update_fields=["expires_at"])


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0009_indexes_for_lists_and_addons"),
    ]

    operations = [
        migrations.AddField(
            model_name="relationshiprequest",
            name="contact_email",
            field=models.EmailField(blank=True, max_length=254),
        ),
        migrations.AddField(
            model_name="relationshiprequest",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(give_sent_requests_an_expiry, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="relationshiprequest",
            name="expires_at",
            field=models.DateTimeField(),
        ),
        migrations.AlterField(
            model_name="relationshiprequest",
            name="status",
            field=models.CharField(choices=[("pending", "Pending"), ("accepted", "Accepted"), ("expired", "Expired")],
                                   default="pending", max_length=10),
        ),
    ]
