"""The local emulator: moto_server with each DynamoDB request atomic, as the
real service's are. Every answer is moto's own.

moto serves requests on threads and its DynamoDB backend takes no lock, so
requests interleave in ways DynamoDB never allows:
- a conditional put checks, then writes: two racing claims of one value can
  both succeed;
- TransactWriteItems deep-copies every table it touches and, when cancelled,
  puts the copies back, erasing writes other clients made meanwhile (and the
  copy costs time in proportion to the table's size);
- a Query walking a table while a write lands fails with a 500
  ("dictionary changed size during iteration").
Here each DynamoDB request runs under one lock, and TransactWriteItems keeps
before-images of the items it touches instead of copies of whole tables.
Usage: python infra/emulator.py ARGS (the arguments of `moto_server`).
"""
import copy
import sys
import threading

import moto.dynamodb.models as models
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.RLock()
_call_action = DynamoHandler.call_action
_transact_write_items = models.DynamoDBBackend.transact_write_items


def call_action(self):
    with _LOCK:
        return _call_action(self)


class _TablesNotCopied:
    """The `copy` module as moto's transact_write_items sees it: tables are
    not copied (its rollback then changes nothing); other values are."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _before_images(backend, transact_items):
    """(table, key, item or None) of every item the transaction names."""
    images = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            old = backend.get_item(table.name, key)
        except Exception:  # moto itself reports a malformed operation
            continue
        images.append((table.name, key, copy.deepcopy(old.to_json()["Attributes"]) if old else None))
    return images


def transact_write_items(self, transact_items):
    images = _before_images(self, transact_items)
    models.copy = _TablesNotCopied
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        # Cancelled: every touched item goes back to what it was (the first
        # image of a key is its state before the transaction, so restore last).
        for name, key, old in reversed(images):
            if old is None:
                self.delete_item(name, key)
            else:
                self.put_item(name, old)
        raise
    finally:
        models.copy = copy


DynamoHandler.call_action = call_action
models.DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    sys.exit(main())
