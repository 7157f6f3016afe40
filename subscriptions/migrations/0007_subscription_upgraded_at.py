from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0006_next_charge_frequency"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="upgraded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="subscription",
            name="transferred_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="billingline",
            name="kind",
            field=models.CharField(choices=[("purchase", "Purchase"), ("increase", "Added licenses"),
                                            ("reduction_refund", "License removal refund"),
                                            ("cancellation_refund", "Cancellation refund"), ("renewal", "Renewal"),
                                            ("cycle", "Billing cycle"), ("upgrade_credit", "Upgrade credit")],
                                   max_length=20),
        ),
    ]
