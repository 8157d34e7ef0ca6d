"""Audience list cost by project size (run by `make bench`).

For projects of each size in AUDIENCE_SIZES (imported through the import
pipeline; 1% of contacts carry the tag "Rare"), the first page (limit 50) of
every sort in both directions, of `q` by email prefix and of the 1% tag
filter: DynamoDB requests by operation and items read, counted by the proxy
between the local runner and the emulator.

Usage: python bench/audience_bench.py MOTO_URL RUNNER
Prints JSON.
"""
import json
import os
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer

import boto3

sys.path.insert(0, os.path.dirname(__file__))
from ddb_count import call, counts, items_read, lock, make_proxy  # noqa: E402
from import_bench import ADMIN, Runner, free_port, upload, wait_in_emulator  # noqa: E402

QUERIES = [f"sort={s}&order={o}" for s in ("created_at", "updated_at", "last_activity_at", "referral_count", "name", "email", "type")
           for o in ("desc", "asc")] + ["q=person12", "tags=Rare"]


PARTIAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".out", "audience.partial")


def audience(path, n):
    with open(path, "w") as f:
        f.write("email,first_name,last_name,company,tags\n")
        for i in range(n):
            f.write(f"person{i}@example.com,First{i},Last{i},Company {i % 97},{'Rare' if i % 100 == 0 else ''}\n")


def reuse_import(ddb, moto, n):
    """A project of `n` imported `person{i}` rows already in this emulator:
    importing 100,000 rows again costs it most of an hour. Either the
    wall-time step's (the same rows as `audience()`, untagged) or an earlier
    audience import of this size (tagged in its file). Returns its stack,
    project id and whether it still needs the 1% tagged, or None."""
    s3 = boto3.client("s3", endpoint_url=moto)
    tables = sorted(t for t in ddb.list_tables()["TableNames"]
                    if t.startswith(("bwall", f"baud{n}x")) and t.endswith("-Table"))
    for table in reversed(tables):
        stack = table[: -len("-Table")]
        bucket = f"{stack}-importsbucket"
        try:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="imports/").get("Contents", [])]
        except Exception:  # noqa: BLE001 - no such bucket: not a bench stack
            continue
        for key in keys:
            _, pid, job_id, _ = key.split("/", 3)
            item = ddb.get_item(TableName=table, Key={"PK": {"S": f"P#{pid}#IMPORT#{job_id}"}, "SK": {"S": "IMPORT"}}).get("Item", {})
            if item.get("state", {}).get("S") == "completed" and int(item.get("rows_total", {}).get("N", "0")) == n:
                return stack, pid, stack.startswith("bwall")
    return None


def tag_one_percent(runner, p, n):
    """Tags every hundredth person "Rare", as `audience()` does in its file."""
    ids = []
    for i in range(0, n, 100):
        _, page = call("GET", f"{runner.base}/v1/projects/{p['id']}/contacts?email=person{i}@example.com", p["api_key"])
        ids.extend(c["id"] for c in page["data"])
    for start in range(0, len(ids), 1000):
        call("POST", f"{runner.base}/v1/projects/{p['id']}/contacts/bulk", p["api_key"],
             {"selection": {"ids": ids[start:start + 1000]}, "action": "tag", "tags": ["Rare"]})


def main():
    moto, binary = sys.argv[1], sys.argv[2]
    sizes = [int(s) for s in os.environ.get("AUDIENCE_SIZES", "1000,10000,100000").split(",")]
    ddb = boto3.client("dynamodb", endpoint_url=moto)
    tmp = tempfile.mkdtemp()
    proxy_port = free_port()
    proxy = ThreadingHTTPServer(("127.0.0.1", proxy_port), make_proxy(moto))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    out = []
    try:
        for n in sizes:
            reused = reuse_import(ddb, moto, n) if n >= 50_000 else None
            stack = reused[0] if reused else f"baud{n}x{int(time.time())}"
            runner = Runner(binary, f"http://127.0.0.1:{proxy_port}", stack)
            runner.start()
            try:
                t0 = time.time()
                if reused:
                    _, key = call("POST", f"{runner.base}/v1/projects/{reused[1]}/keys/rotate", ADMIN, {"kind": "secret"})
                    p = {"id": reused[1], "api_key": key["key"]}
                    if reused[2]:
                        tag_one_percent(runner, p, n)
                    print(f"bench: audience {n}: reusing the import of {stack} in {time.time() - t0:.0f} s", file=sys.stderr)
                else:
                    p = runner.project()
                    path = os.path.join(tmp, f"aud{n}.csv")
                    audience(path, n)
                    job = runner.create_import(p, os.path.basename(path))
                    upload(job["upload_url"], path, direct=moto)
                    state = wait_in_emulator(ddb, f"{stack}-Table", p["id"], job["id"])
                    print(f"bench: audience {n}: imported ({state}) in {time.time() - t0:.0f} s", file=sys.stderr)

                for q in QUERIES:
                    with lock:
                        counts.clear()
                        items_read.clear()
                    _, page = call("GET", f"{runner.base}/v1/projects/{p['id']}/contacts?limit=50&{q}", p["api_key"])
                    with lock:
                        snap, items = dict(counts), items_read["items"]
                    row = {"contacts": n, "query": q, "returned": len(page["data"]),
                           "requests": sum(snap.values()), "items_read": items,
                           "by_operation": dict(sorted(snap.items()))}
                    out.append(row)
                    # What is measured survives a stopped run (a page of a 100k project
                    # takes the emulator minutes), one JSON row a line.
                    with open(PARTIAL, "a") as f:
                        f.write(json.dumps(row) + "\n")
            finally:
                runner.kill()
    finally:
        proxy.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
