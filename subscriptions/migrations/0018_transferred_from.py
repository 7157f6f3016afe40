import django.db.models.deletion
from django.db import migrations, models


def link_transferred_subscriptions(apps, schema_editor):
    """Subscriptions transferred in before this field: linked to the source's record their audit entry named, and
    that id taken out of the entries (each side's activity holds no id of the other partner's records)."""
    AuditEntry = apps.get_model("subscriptions", "AuditEntry")
    Subscription = apps.get_model("subscriptions", "Subscription")
    for entry in AuditEntry.objects.filter(action="subscription.transferred_in").exclude(subscription=None):
        source = (entry.after or {}).pop("from", None)
        if source and Subscription.objects.filter(pk=source).exists():
            Subscription.objects.filter(pk=entry.subscription_id).update(transferred_from_id=source)
        entry.save(update_fields=["after"])
    for entry in AuditEntry.objects.filter(action="subscription.transferred"):
        (entry.after or {}).pop("to", None)
        entry.save(update_fields=["after"])


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0017_audit_webhooks_outbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="transferred_from",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="subscriptions.subscription",
            ),
        ),
        migrations.RunPython(link_transferred_subscriptions, migrations.RunPython.noop),
    ]
