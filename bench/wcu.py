"""Write capacity units a contact costs, from the items themselves.

Imports ROWS new contacts (email, names, company, phone) through the local
runner, reads every item of the project straight from the emulator, imports
the same file again (every row an existing contact, its data unchanged) and
reads them again. From the two reads, by DynamoDB's rules: a write costs
ceil(item size / 1 KB) units (size: attribute names and values), twice that
in a transaction (the identity claims); every GSI whose key attributes the
item holds costs an entry write (KEYS_ONLY: the keys and 100 bytes, one
unit), two when its key changes (delete and put). An update costs the larger
of the item before and after. The import's own items (job, ledger, report
parts) are left out: they are per chunk, not per contact.

Usage: python bench/wcu.py DYNAMODB_URL RUNNER → JSON.
"""
import base64
import json
import math
import os
import sys
import tempfile
import time

import boto3

sys.path.insert(0, os.path.dirname(__file__))
from import_bench import Runner, people, upload, wait_in_emulator  # noqa: E402

ROWS = int(os.environ.get("WCU_ROWS", "500"))


def value_size(v):
    (t, x), = v.items()
    if t == "S":
        return len(x.encode())
    if t == "N":
        return len(x.lstrip("-").replace(".", "")) // 2 + 1
    if t == "B":
        return len(base64.b64decode(x)) if isinstance(x, str) else len(x)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "SS":
        return sum(len(s.encode()) for s in x)
    if t == "NS":
        return sum(len(n) // 2 + 1 for n in x)
    if t == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if t == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(e) for k, e in x.items())
    return 0


def item_size(item):
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


def units(size):
    return max(1, math.ceil(size / 1024))


def scan_project(ddb, table, pid):
    items, start = {}, None
    while True:
        kw = {"TableName": table}
        if start:
            kw["ExclusiveStartKey"] = start
        page = ddb.scan(**kw)
        for it in page["Items"]:
            pk = it["PK"]["S"]
            if pk.startswith(f"P#{pid}#") and "#IMPORT#" not in pk:
                items[(pk, it["SK"]["S"])] = it
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def kind(key):
    """A readable item type from its key: P#pid#C#id/CONTACT → C/CONTACT."""
    pk, sk = key
    parts = pk.split("#")[2:]
    if parts and parts[0] == "Q":
        return "Q / (search token)"
    head = "#".join(p for p in parts[:2] if not p[:1].isdigit() and len(p) < 20) or parts[0]
    return f"{head} / {sk.split('#')[0]}"


def gsi_key(item, index):
    vals = tuple(item.get(a) for a in index)
    return None if any(v is None for v in vals) else json.dumps(vals, sort_keys=True)


def main():
    dynamodb, binary = sys.argv[1], sys.argv[2]
    ddb = boto3.client("dynamodb", endpoint_url=dynamodb)
    stack = f"bwcu{int(time.time())}"
    runner = Runner(binary, dynamodb, stack)
    runner.start()
    tmp = tempfile.mkdtemp()
    try:
        table = f"{stack}-Table"
        desc = ddb.describe_table(TableName=table)["Table"]
        gsis = {g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in desc.get("GlobalSecondaryIndexes", [])}
        p = runner.project()
        path = os.path.join(tmp, "wcu.csv")
        people(path, ROWS, offset=20_000_000, phones=True)
        snaps = [{}]
        for _ in range(2):
            job = runner.create_import(p, "wcu.csv")
            upload(job["upload_url"], path)
            wait_in_emulator(ddb, table, p["id"], job["id"])
            snaps.append(scan_project(ddb, table, p["id"]))
        out = {"rows": ROWS, "gsis": len(gsis)}
        for label, before, after in (("new", snaps[0], snaps[1]), ("existing", snaps[1], snaps[2])):
            table_units, gsi_units, by_kind = 0, 0, {}
            for key in set(before) | set(after):
                old, new = before.get(key), after.get(key)
                if old == new:
                    continue
                size = max(item_size(old or {}), item_size(new or {}))
                # Identity claims of new rows are written in transactions: twice the units.
                claim = label == "new" and "#ID#" in key[0] and "#ID#referral_code" not in key[0]
                u = units(size) * (2 if claim else 1)
                g = 0
                for index in gsis.values():
                    ko, kn = gsi_key(old or {}, index), gsi_key(new or {}, index)
                    if ko != kn:
                        g += (ko is not None) + (kn is not None)
                table_units += u
                gsi_units += g
                k = by_kind.setdefault(kind(key), {"items": 0, "bytes": 0, "units": 0, "gsi_units": 0})
                k["items"] += 1
                k["bytes"] += size
                k["units"] += u
                k["gsi_units"] += g
            out[label] = {
                "table_units_per_contact": round(table_units / ROWS, 2),
                "gsi_units_per_contact": round(gsi_units / ROWS, 2),
                "units_per_contact": round((table_units + gsi_units) / ROWS, 2),
                "by_item": {k: {"per_contact": round(v["items"] / ROWS, 3),
                                "mean_bytes": round(v["bytes"] / v["items"]),
                                "units_per_contact": round(v["units"] / ROWS, 3),
                                "gsi_units_per_contact": round(v["gsi_units"] / ROWS, 3)} for k, v in sorted(by_kind.items())},
            }
        print(json.dumps(out))
    finally:
        runner.kill()


if __name__ == "__main__":
    main()
