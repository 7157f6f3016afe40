"""The lists' indexes (S1), each serving one list's filter and sort in both directions, once the copies are filled
(a migration of its own: on PostgreSQL, a table whose rows were just updated under a deferred foreign key can't be
altered in the same transaction)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_customer_indexes"),
        ("subscriptions", "0014_list_sort_keys"),
    ]

    operations = [
        migrations.AlterField(
            model_name="subscription",
            name="partner",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="portal.partner",
            ),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "quantity", "id"], name="subscription_quantity_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "term", "id"], name="subscription_term_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "billing_frequency", "id"], name="subscription_billing_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "auto_renew", "id"], name="subscription_auto_renew_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["customer", "reseller_name", "id"], name="subscription_reseller_name_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(
                fields=["partner", "customer_name", "customer", "list_name", "id"], name="subscription_all_customer_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "list_name", "id"], name="subscription_all_name_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "quantity", "id"], name="subscription_all_quantity_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "status", "list_name", "id"], name="subscription_all_status_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "term", "id"], name="subscription_all_term_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "billing_frequency", "id"], name="subscription_all_billing_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "term_end", "id"], name="subscription_all_term_end_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "auto_renew", "id"], name="subscription_all_renew_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["partner", "reseller_name", "id"], name="subscription_all_reseller_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(
                condition=models.Q(("reseller__isnull", False)),
                fields=["reseller", "customer_name", "customer", "list_name", "id"],
                name="subscription_resold_cust_idx",
            ),
        ),
    ]
