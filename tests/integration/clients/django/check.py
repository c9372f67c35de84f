"""djcheck: Django's ORM on the django-tidb backend (mysqlclient underneath)
against a MySQL-protocol server over verified TLS. A model with django-tidb's
VectorField, bulk_create, updates, transactions, aggregates, raw SQL, and
vector searches through the ORM (CosineDistance / L2Distance annotations,
ordered and filtered), repeated in rounds. Prints one deterministic line per
result; the integration tests compare a direct run with a run through vecgate.

--stand-in: the server is the MariaDB stand-in, which has no VECTOR type and
reports a MariaDB version. The table is then created with LONGTEXT for the
vector column, and django-tidb's reading of a TiDB version string is replaced
by TiDB 8.5 (the backend cannot parse MariaDB's); nothing else changes.
"""
import argparse
import sys
import time

import django
from django.conf import settings


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="root")
    ap.add_argument("--password", default="")
    ap.add_argument("--db", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stand-in", action="store_true")
    return ap.parse_args()


args = parse_args()
settings.configure(
    DATABASES={"default": {
        "ENGINE": "django_tidb",
        "NAME": args.db, "USER": args.user, "PASSWORD": args.password,
        "HOST": args.host, "PORT": args.port,
        # mysqlclient: the CA, and verification of the chain and host name.
        "OPTIONS": {"charset": "utf8mb4", "ssl": {"ca": args.ca}, "ssl_mode": "VERIFY_IDENTITY"},
    }},
    INSTALLED_APPS=[], USE_TZ=True, TIME_ZONE="UTC",
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
if args.stand_in:
    import django_tidb.base
    django_tidb.base.DatabaseWrapper.tidb_version = property(lambda self: (8, 5, 0))
django.setup()

from django.db import connection, models, transaction  # noqa: E402
from django.db.models import Avg, Count, Max, Q  # noqa: E402
from django_tidb.fields.vector import CosineDistance, L2Distance, VectorField  # noqa: E402


class Item(models.Model):
    name = models.CharField(max_length=40, db_collation="utf8mb4_bin")
    year = models.IntegerField()
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    embedding = VectorField(dimensions=3, null=True)

    class Meta:
        app_label = "djcheck"
        db_table = "dj_items"


def out(*parts):
    print(*parts, flush=True)


def vec(v):
    return None if v is None else "[" + ",".join(repr(float(x)) for x in v) + "]"


def show(item, extra=()):
    cells = [item.id, repr(item.name), item.year, item.price, vec(item.embedding)]
    return " ".join(str(c) for c in cells + [getattr(item, e) for e in extra])


def main():
    with connection.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        out("server sees tls:", bool(cur.fetchone()[1]))
    if args.stand_in:
        with connection.cursor() as cur:
            cur.execute("CREATE TABLE dj_items (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                        "name VARCHAR(40) COLLATE utf8mb4_bin NOT NULL, year INT NOT NULL, "
                        "price DECIMAL(10,2), embedding LONGTEXT)")
    else:
        with connection.schema_editor() as editor:
            editor.create_model(Item)
    made = Item.objects.bulk_create([
        Item(name=f"item {i % 6}", year=1995 + i % 30, price=None if i % 9 == 0 else i * 1.25,
             embedding=None if i == 13 else [i % 4, (i % 5) - 2, i * 0.5])
        for i in range(1, 41)])
    out("bulk_create:", len(made))
    one = Item.objects.create(name="ünïcode ✓", year=2024, price="9.99", embedding=[1, 2, 3])
    out("create:", one.id)
    out("update:", Item.objects.filter(year__lt=2000).update(price=0))
    try:
        with transaction.atomic():
            Item.objects.filter(id=1).delete()
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with transaction.atomic():
        Item.objects.filter(id=2).update(name="renamed")
    out("count:", Item.objects.count(), "exists 1:", Item.objects.filter(id=1).exists())
    agg = Item.objects.aggregate(n=Count("id"), avg=Avg("year"), top=Max("price"))
    out("aggregate:", agg["n"], agg["avg"], agg["top"])
    for it in Item.objects.filter(Q(name="renamed") | Q(year__gte=2020)).order_by("id"):
        out("filtered:", show(it))
    for label, n in Item.objects.values_list("name").annotate(n=Count("id")).order_by("name"):
        out("group:", repr(label), n)

    searches = {
        "cosine": lambda q: (Item.objects.annotate(distance=CosineDistance("embedding", q))
                             .order_by("distance")[:3]),
        "l2 filtered": lambda q: (Item.objects.annotate(distance=L2Distance("embedding", q))
                                  .filter(year__gte=2005).order_by("distance")[:4]),
        "cosine by name": lambda q: (Item.objects.annotate(distance=CosineDistance("embedding", q))
                                     .filter(name="item 2").order_by("distance")[:2]),
    }
    for rnd in range(args.rounds):
        if rnd:
            time.sleep(0.15)  # lets a proxy's cache load the table
        for label, make in searches.items():
            for it in make([1, 2, 3]):
                out(f"{label} r{rnd}:", show(it, ["distance"]))
    with connection.cursor() as cur:
        cur.execute("SELECT id, VEC_COSINE_DISTANCE(embedding, %s) AS d FROM dj_items "
                    "ORDER BY d LIMIT 2", ["[3,1,2]"])
        for row in cur.fetchall():
            out("raw:", *row)
        try:
            cur.execute("SELECT * FROM no_such_table")
        except Exception as e:
            out("error:", type(e).__name__, e.args[0])
    out("done")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(f"djcheck: {type(e).__name__}: {e}", file=sys.stderr)
        raise
