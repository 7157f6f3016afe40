"""Queries built and compiled once per process, then run again with other values.

Django builds a queryset and compiles its SQL at every evaluation. On the busiest pages that costs more than
running the SQL: a subscription list's page query takes about 0.1 ms on SQLite and about 1 ms to build and
compile. A prepared query is built once per *shape* by a function of stand-in values (markers), compiled by
Django, and remembered with the place of each marker among the SQL's parameters; each run puts the real values
there, runs the SQL through Django's cursor (so it is logged and counted like any query) and converts the
rows with the compiler's own converters. The SQL and the rows are exactly Django's.

The rule that keeps this safe: the build function receives every value that varies between runs as a marker
argument and closes over nothing else; everything else it reads (a filter being on, a sort, a page's bounds)
is part of the key. Each shape is built twice, with two sets of markers, and the two compilations must differ in
the markers' places only: a value built into the SQL, or computed from a marker (`now + 48 hours`), or a lookup
that Django drops for its value, gives two different compilations and is refused, as is a value that reaches
the SQL nowhere. The markers are values no data has. The cache lives on the database connection (one per
thread) and keeps the shapes used most recently.
"""

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from django.db import connections, models
from django.db.models import QuerySet

_MAX_SHAPES = 256  # per connection; the least recently used goes first

# The Django field that turns each kind of value into a query parameter, as the ORM does for a lookup on it.
_FIELDS = {
    UUID: models.UUIDField(),
    int: models.BigIntegerField(),
    str: models.TextField(),
    datetime: models.DateTimeField(),
    date: models.DateField(),
}


def _kind(value) -> type:
    if isinstance(value, bool):
        raise TypeError("A flag changes the query's shape: put it in the key, not among the values.")
    for kind in (UUID, int, str, datetime, date):  # datetime before date: a datetime is a date
        if isinstance(value, kind):
            return kind
    raise TypeError(f"No marker for a {type(value).__name__}.")


def _marker(kind: type, n: int, variant: int):
    """The n-th stand-in value of a kind, in one of two variants: values no row and no constant of the portal has,
    and inside every column's range (positive, and small enough for a 32-bit integer column), so that Django
    compiles the lookup as it would for a real value."""
    if kind is UUID:
        return UUID(int=(0x5EED + variant) << 112 | n)
    if kind is int:
        return 1_900_000_000 + 100_000 * variant + n
    if kind is str:
        return f"\x1fmarker {variant}.{n}\x1f"
    if kind is datetime:
        return datetime(1901 + variant, 2, 3, 4, 5, 6, tzinfo=UTC) + timedelta(minutes=n)
    return date(1901 + variant, 2, 3) + timedelta(days=n)


def _markers(kinds: tuple, variant: int) -> tuple:
    counts: dict[type, int] = {}
    markers = []
    for kind in kinds:  # numbered per kind
        markers.append(_marker(kind, counts.get(kind, 0), variant))
        counts[kind] = counts.get(kind, 0) + 1
    return tuple(markers)


class _Shape:
    __slots__ = ("sql", "params", "slots", "kinds", "compiler", "converters", "col_count", "build", "model",
                 "attnames")

    def __init__(self, build: Callable[..., QuerySet], values: tuple, connection, *, count: bool, instances: bool):
        self.build = build
        self.kinds = tuple(_kind(v) for v in values)
        # The second set of markers first: what the compilation leaves on the shape (columns, converters) is then
        # the first set's, whose SQL and parameters are kept.
        (other_sql, other_params, _), (sql, params, compiler) = (
            self._compile(_markers(self.kinds, variant), connection, count=count, instances=instances)
            for variant in (1, 0))
        places = [self._places(variant, connection) for variant in (0, 1)]
        slots = tuple(places[0].get(p) if _hashable(p) else None for p in params)
        other_slots = tuple(places[1].get(p) if _hashable(p) else None for p in other_params)
        if sql != other_sql or slots != other_slots or any(
                slot is None and p != q for p, q, slot in zip(params, other_params, slots)):
            raise ValueError(f"{_name(build)}: its SQL changes with its values other than in their places (a value "
                             "built in, computed from another, or a lookup dropped for its value).")
        missing = set(range(len(values))) - set(slots)
        if missing:
            raise ValueError(f"{_name(build)}: values {sorted(missing)} are not parameters of its SQL.")
        self.sql, self.params, self.slots, self.compiler = sql, list(params), slots, compiler

    def _compile(self, markers: tuple, connection, *, count: bool, instances: bool):
        queryset = self.build(*markers)
        self.model, self.attnames = queryset.model, ()
        if instances:
            if queryset.query.select_related or queryset.query.deferred_loading != (frozenset(), True):
                raise ValueError(f"{_name(self.build)}: instances are loaded without select_related or deferred fields.")
            self.attnames = tuple(f.attname for f in self.model._meta.concrete_fields)
            queryset = queryset.values_list(*self.attnames)
        if count:
            queryset = queryset.order_by().values("pk")
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        if count:
            sql, self.col_count, self.converters = f"SELECT COUNT(*) FROM ({sql}) counted", 1, {}
        else:
            self.col_count = compiler.col_count
            self.converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
        return sql, params, compiler

    def _places(self, variant: int, connection) -> dict:
        """Each marker of this variant, as a query parameter, to the index of the value it stands for."""
        return {self._adapt(kind, m, connection): n
                for n, (kind, m) in enumerate(zip(self.kinds, _markers(self.kinds, variant)))}

    @staticmethod
    def _adapt(kind: type, value, connection):
        if kind is int or kind is str:  # what the ORM passes on for them: the value itself
            return value
        return _FIELDS[kind].get_db_prep_value(value, connection, prepared=False)

    def run(self, values: tuple, connection) -> list:
        if tuple(_kind(v) for v in values) != self.kinds:
            raise TypeError(f"{_name(self.build)}: values of other kinds than its first run's.")
        adapted = [self._adapt(kind, v, connection) for kind, v in zip(self.kinds, values)]
        params = [p if slot is None else adapted[slot] for p, slot in zip(self.params, self.slots)]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if len(rows) and len(rows[0]) != self.col_count:
            rows = [row[: self.col_count] for row in rows]
        if self.converters:
            return [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]
        return rows


def _name(build) -> str:
    return getattr(getattr(build, "func", build), "__qualname__", repr(build))


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _shape(key: tuple, build: Callable[..., QuerySet], values: tuple, using: str, count: bool,
           instances: bool = False) -> tuple[_Shape, object]:
    connection = connections[using]
    cache = connection.__dict__.setdefault("_prepared_shapes", OrderedDict())
    full_key = (key, count, instances)
    shape = cache.get(full_key)
    if shape is None:
        shape = _Shape(build, values, connection, count=count, instances=instances)
        cache[full_key] = shape
        while len(cache) > _MAX_SHAPES:
            cache.popitem(last=False)
    elif _name(shape.build) != _name(build):
        raise ValueError(f"Prepared query {key!r} is built by {_name(shape.build)}, not {_name(build)}.")
    else:
        cache.move_to_end(full_key)
    return shape, connection


def rows(key: tuple, build: Callable[..., QuerySet], *values, using: str = "default") -> list[tuple]:
    """The rows of `build(*markers)` (a `values_list()` queryset) with `values` in the markers' places, as
    `list(build(*values))` would return them. `key` names the shape: the same key, the same SQL."""
    shape, connection = _shape(key, build, values, using, count=False)
    return shape.run(values, connection)


def count(key: tuple, build: Callable[..., QuerySet], *values, using: str = "default") -> int:
    """`build(*values).count()`, prepared like `rows` (its own shape under the same key)."""
    shape, connection = _shape(key, build, values, using, count=True)
    return shape.run(values, connection)[0][0]



def instances(key: tuple, build: Callable[..., QuerySet], *values, using: str = "default") -> list:
    """The model instances of `build(*markers)` (a queryset of one model, without select_related or deferred
    fields) with `values` in the markers' places, loaded as the ORM loads them (`Model.from_db`)."""
    shape, connection = _shape(key, build, values, using, count=False, instances=True)
    from_db, attnames = shape.model.from_db, shape.attnames
    return [from_db(using, attnames, row) for row in shape.run(values, connection)]
