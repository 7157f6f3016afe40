from django.db import migrations, models


def copy_api_attestations(apps, schema_editor):
    """The attestations the API kept beside the cart (api.CartAttestation) move onto the cart itself."""
    Cart = apps.get_model("catalog", "Cart")
    CartAttestation = apps.get_model("api", "CartAttestation")
    accepted = CartAttestation.objects.filter(accepted=True).values_list("cart_id", flat=True)
    Cart.objects.filter(pk__in=list(accepted)).update(attestation_accepted=True)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0003_cart_attestation"),
        ("catalog", "0005_pending_work_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="cart",
            name="attestation_accepted",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(copy_api_attestations, migrations.RunPython.noop),
    ]
