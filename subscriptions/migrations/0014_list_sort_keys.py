"""The lists' sort keys on the row being listed (S1): the customer's name and partner and the reseller's name, copied
onto each subscription and filled here from the customer and reseller rows, then an index for every list's sort."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models.functions import Coalesce


def fill_copies(apps, schema_editor):
    Subscription = apps.get_model("subscriptions", "Subscription")
    Customer = apps.get_model("portal", "Customer")
    Partner = apps.get_model("portal", "Partner")
    customer = Customer.objects.filter(pk=models.OuterRef("customer_id"))
    reseller = Partner.objects.filter(pk=models.OuterRef("reseller_id"))
    Subscription.objects.update(
        customer_name=models.Subquery(customer.values("company_name")[:1]),
        partner=models.Subquery(customer.values("partner_id")[:1]),
        reseller_name=Coalesce(models.Subquery(reseller.values("name")[:1]), models.Value("")),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_pending_work_indexes"),
        ("portal", "0002_customer_indexes"),
        ("subscriptions", "0013_pending_work_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="customer_name",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.AddField(
            model_name="subscription",
            name="partner",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="portal.partner",
            ),
        ),
        migrations.AddField(
            model_name="subscription",
            name="reseller_name",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.AlterField(
            model_name="subscription",
            name="reseller",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="resold_subscriptions",
                to="portal.partner",
            ),
        ),
        migrations.RunPython(fill_copies, migrations.RunPython.noop),
    ]
