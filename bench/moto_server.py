"""The emulator for `make bench`: infra/emulator.py (moto with each DynamoDB
request atomic), with one speed-up that changes no answer.

moto answers every DynamoDB `Query` by building and sorting a list of every
item in the table (`Table.all_items()`): with a 100,000-contact project
(~800,000 items) a page of 32 shard queries takes it many minutes. Here that
sorted list is kept until the table's items change (a put or delete, or a
different item count), so the pages of a project nobody is writing to are
measured in seconds. Requests and items read, which the bench counts, are
those of the unpatched emulator. Usage: python bench/moto_server.py ARGS
(the arguments of `moto_server`).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
import emulator  # noqa: E402  (its patches apply on import)
import moto.dynamodb.models.table as table  # noqa: E402
from moto.server import main  # noqa: E402

_all_items, _put_item, _delete_item = table.Table.all_items, table.Table.put_item, table.Table.delete_item


def _count(t):
    return sum(len(h) if isinstance(h, dict) else 1 for h in t.items.values())


def all_items(self):
    count = _count(self)
    cached = self.__dict__.get("_bench_all_items")
    if cached is None or cached[0] != count:
        cached = (count, _all_items(self))
        self.__dict__["_bench_all_items"] = cached
    return list(cached[1])


def _forgetting(write):
    def wrapped(self, *args, **kwargs):
        self.__dict__.pop("_bench_all_items", None)
        try:
            return write(self, *args, **kwargs)
        finally:
            self.__dict__.pop("_bench_all_items", None)

    return wrapped


table.Table.all_items = all_items
table.Table.put_item = _forgetting(_put_item)
table.Table.delete_item = _forgetting(_delete_item)

if __name__ == "__main__":
    sys.exit(main())
