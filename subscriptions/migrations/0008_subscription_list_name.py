"""The lists' sort key `Subscription.list_name` (the friendly name, else the offer's), filled for every existing
subscription, and the indexes the lists' orderings read in order (S1)."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, NullIf


def fill_list_names(apps, schema_editor):
    Subscription = apps.get_model("subscriptions", "Subscription")
    Sku = apps.get_model("catalog", "Sku")
    offer_name = Sku.objects.filter(pk=OuterRef("sku_id")).values("name")[:1]
    Subscription.objects.update(list_name=Coalesce(NullIf("friendly_name", Value("")), Subquery(offer_name)))


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0001_initial"),
        ("subscriptions", "0007_subscription_upgraded_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="list_name",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.RunPython(fill_list_names, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "list_name", "id"], name="subscription_list_name_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "term_end", "id"], name="subscription_term_end_idx"),
        ),
    ]
