"""`python manage.py seed_demo`: the demo partners, staff, customers, catalog and subscriptions.

Idempotent: when the demo's direct-bill partner already exists, nothing changes.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal import demo


class Command(BaseCommand):
    help = "Creates the demo data set (partners, staff, customers, catalog, orders, subscriptions) once."

    def handle(self, *args, **options):
        # The command is the edge: the one place the seed reads the clock.
        now = timezone.now()
        try:
            seeded = demo.seed_demo(now=now)
        except demo.DemoConflict as conflict:
            raise CommandError(str(conflict)) from conflict
        if seeded is None:
            self.stdout.write(
                f"The demo is already seeded (partner {demo.DIRECT_BILL_PARTNER_ID} exists): nothing changed."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded the demo at {now:%Y-%m-%d %H:%M} UTC: {len(seeded.partners)} partners, "
                    f"{len(seeded.users)} staff users, {len(seeded.customers)} customers, "
                    f"{len(seeded.catalog)} offers, {len(seeded.orders)} orders, {seeded.subscription_count()} subscriptions."
                )
            )
        self.stdout.write(f"\nDemo sign-ins (password {demo.DEMO_PASSWORD}):")
        sign_ins = demo.demo_sign_ins()
        width = max(len(s["username"]) for s in sign_ins)
        partner_width = max(len(s["partner"]) for s in sign_ins)
        for sign_in in sign_ins:
            self.stdout.write(
                f"  {sign_in['username']:<{width}}  {sign_in['partner']:<{partner_width}}  {sign_in['roles']}"
            )
