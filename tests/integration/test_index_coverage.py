"""Every query on a collection that grows with customers is served by one of its indexes.

The walk of every route and job (`route_walk.py`) runs with a command listener; each `find`,
`aggregate` (a leading `$match`, then `$sort`), `count`, `distinct`, `update`, `delete` and
`findAndModify` it sent is checked against the collection's indexes as the database lists them:
some index must start with the equality fields (any order), then the sort fields (in order, one
direction or all reversed), then the range fields (the ESR rule). On the embedded server a query
costs what it returns whatever the indexes; on MongoDB a query no index serves scans the collection,
so this test, not a timing, is what keeps a page O(page) in production."""

from __future__ import annotations

from typing import Any

from tests.integration.db_commands import Command, Query
from tests.integration.route_walk import walked

# Small, bounded collections: configured by admins, not one document per customer or per action.
BOUNDED = {
    "banks": "the lenders this service works with: tens, entered by admins",
    "loan_products": "each bank's products: tens to hundreds, entered by admins",
    "webhook_endpoints": "integrators' receivers: a handful, registered by admins",
    "api_keys": "integrators' keys: tens, issued by admins",
    "screening_lists": "the watchlists operators load: a handful",
}
# Reads of a whole growing collection that no index can make O(page), each named by the gap line
# it makes. Not bounded: they are listed so that they stay few and visible.
WHOLE_COLLECTION = {
    "aggregate user filter={} sort={} then $group":
        "GET /admin/stats: customers and staff per role, over every user",
    "aggregate loans filter={} sort={} then $facet":
        "GET /admin/stats and /admin/statistics: the loan book's figures, over every loan",
    "aggregate kyc_doc filter={} sort={} then $facet":
        "GET /admin/stats: cases per status and risk level, over every case",
    "find user filter={'$or': [{'name': {'$regex': '?', '$options': '?'}}, {'email': {'$regex': '?', '$options': '?'}}, "
    "{'phone': {'$regex': '?', '$options': '?'}}]} sort={'created_at': -1, '_id': -1}":
        "GET /admin/users?q=: a case-insensitive substring search over names, emails and phones",
    "count user filter={'$or': [{'name': {'$regex': '?', '$options': '?'}}, {'email': {'$regex': '?', '$options': '?'}}, "
    "{'phone': {'$regex': '?', '$options': '?'}}]} sort={}":
        "GET /admin/users?q=: the same search's total",
}
# Operators that keep or drop documents without bounding an index scan: they never need a key.
RESIDUAL = frozenset({"$ne", "$nin", "$exists", "$not", "$type", "$regex", "$size"})
RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})
EQUALITY = frozenset({"$eq", "$in", "$all"})


class Unindexable(Exception):
    """A filter no index can serve ($where, $expr, $text)."""


def _shape(flt: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str], list[list[dict[str, Any]]]]:
    """(equality fields, range fields, $or branches) of a filter; residual conditions are left out."""
    eq: set[str] = set()
    ranges: set[str] = set()
    ors: list[list[dict[str, Any]]] = []
    for key, value in flt.items():
        if key == "$and":
            for part in value:
                e, r, o = _shape(part, prefix)
                eq, ranges, ors = eq | e, ranges | r, ors + o
        elif key == "$or":
            ors.append(list(value))
        elif key.startswith("$"):
            raise Unindexable(key)
        elif isinstance(value, dict) and value and all(k.startswith("$") for k in value):
            ops = set(value)
            name = prefix + key
            if "$elemMatch" in ops:
                e, r, o = _shape(value["$elemMatch"], name + ".")
                eq, ranges, ors = eq | e, ranges | r, ors + o
            elif ops & EQUALITY:
                eq.add(name)
            elif ops & RANGE:
                ranges.add(name)
            elif not ops <= RESIDUAL:
                raise Unindexable(f"{name}: {sorted(ops)}")
        else:
            eq.add(prefix + key)
    return eq, ranges, ors


def _usable(index: dict[str, Any], eq: set[str]) -> bool:
    """A partial index serves only queries that name its filter's fields by equality."""
    partial = index.get("partialFilterExpression")
    return not partial or set(partial) <= eq


def _serves(index: dict[str, Any], eq: set[str], sort: list[tuple[str, int]], ranges: set[str]) -> bool:
    keys = list(index["key"].items())
    if not _usable(index, eq):
        return False
    n = len(eq)
    if {k for k, _ in keys[:n]} != eq:
        return False
    rest = keys[n:]
    if sort:
        head = rest[:len(sort)]
        if [k for k, _ in head] != [k for k, _ in sort]:
            return False
        same = all(int(d) == int(s) for (_, d), (_, s) in zip(head, sort, strict=True))
        flipped = all(int(d) == -int(s) for (_, d), (_, s) in zip(head, sort, strict=True))
        if not (same or flipped):
            return False
        rest = rest[len(sort):]
    ranges = ranges - {k for k, _ in sort}  # a range on a sort key is bounded by that key
    if not ranges:
        return bool(eq or sort)
    # The first key after equality and sort bounds the scan; the others filter within it.
    return bool(rest) and rest[0][0] in ranges


def served(query: Query, indexes: list[dict[str, Any]]) -> bool:
    try:
        eq, ranges, ors = _shape(query.filter)
    except Unindexable:
        return False
    sort = [(k, v) for k, v in query.sort.items() if isinstance(v, int)]
    if "_id" in eq:
        return True
    if ors:  # each branch, with the common conditions, on an index of its own
        return all(served(Query({**{k: v for k, v in query.filter.items() if k != "$or"}, **branch}, query.sort),
                          indexes) for branches in ors for branch in branches)
    if not eq and not ranges and not sort and query.limit == 1:
        return True  # any first document (GridFS's "is the bucket empty?")
    for index in indexes:
        if index.get("unique") and _usable(index, eq) and set(index["key"]) <= eq:
            return True  # at most one document
        if _serves(index, eq, sort, ranges):
            return True
    return False


def shape(value: Any) -> Any:
    """A filter with its values blanked, so one query sent many times is reported once."""
    if isinstance(value, dict):
        return {k: shape(v) if k.startswith("$") or isinstance(v, dict) else "?" for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [shape(v) for v in value]
    return "?"


def _gaps(commands: list[Command], indexes: dict[str, list[dict[str, Any]]]) -> list[str]:
    gaps = set()
    for command in commands:
        if command.collection is None or command.collection in BOUNDED:
            continue
        for query in command.queries:
            if command.name == "count" and not query.filter:
                continue  # the collection's own document count (`estimated_document_count`): no scan
            if not served(query, indexes.get(command.collection, [])):
                name = "count" if query.then == "count" else command.name
                then = f" then {query.then}" if query.then not in ("", "count") else ""
                gaps.add(f"{name} {command.collection} filter={shape(query.filter)} sort={query.sort}{then}")
    return sorted(gaps - set(WHOLE_COLLECTION))


def test_the_index_check_tells_a_scan_from_an_index():
    ix = [{"key": {"_id": 1}, "unique": True}, {"key": {"status": 1, "run_at": 1}},
          {"key": {"user_id": 1}, "unique": True, "partialFilterExpression": {"status": "OPEN"}}]
    assert served(Query({"status": "queued", "run_at": {"$lte": 1}}), ix)
    assert served(Query({"status": "queued"}, {"run_at": -1}), ix)
    assert served(Query({"_id": 1, "anything": 2}), ix)
    assert served(Query({"user_id": "u", "status": "OPEN"}), ix)
    assert not served(Query({"user_id": "u"}), ix)  # the partial index holds open cases only
    assert not served(Query({"run_at": {"$lte": 1}}), ix)  # a range without its equality
    assert not served(Query({"status": "queued"}, {"created_at": 1}), ix)  # the sort is not in the index
    assert not served(Query({}), ix) and served(Query({}, limit=1), ix)
    assert not served(Query({"$or": [{"status": "x"}, {"kind": "y"}]}), ix)


async def test_every_query_on_a_growing_collection_is_served_by_an_index(api_factory):
    result = await walked(api_factory)
    assert result.commands, "the walk sent nothing"
    gaps = _gaps(result.commands, result.indexes)
    assert not gaps, "queries no index serves:\n" + "\n".join(gaps)
