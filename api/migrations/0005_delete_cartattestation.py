from django.db import migrations


class Migration(migrations.Migration):
    # The attestation is the cart's own now (catalog.Cart.attestation_accepted), written by the cart's service.
    dependencies = [
        ("api", "0004_transition_records"),
        ("catalog", "0006_cart_attestation_accepted"),
    ]

    operations = [
        migrations.DeleteModel(name="CartAttestation"),
    ]
