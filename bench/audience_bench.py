"""Audience list cost by project size (run by `make bench`).

For projects of each size in AUDIENCE_SIZES (imported through the import
pipeline; 1% of contacts carry the tag "Rare"), the first page (limit 50) of
every sort in both directions, of `q` by email prefix and of the 1% tag
filter: DynamoDB requests by operation and items read, counted by the proxy
between the local runner and the emulator.

Usage: python bench/audience_bench.py DYNAMODB_URL RUNNER (S3 and SQS: AWS_ENDPOINT_URL)
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
from import_bench import Runner, free_port, upload, wait_in_emulator  # noqa: E402

QUERIES = [f"sort={s}&order={o}" for s in ("created_at", "updated_at", "last_activity_at", "referral_count", "name", "email", "type")
           for o in ("desc", "asc")] + ["q=person12", "tags=Rare"]


def audience(path, n):
    with open(path, "w") as f:
        f.write("email,first_name,last_name,company,tags\n")
        for i in range(n):
            f.write(f"person{i}@example.com,First{i},Last{i},Company {i % 97},{'Rare' if i % 100 == 0 else ''}\n")


def main():
    dynamodb, binary = sys.argv[1], sys.argv[2]
    sizes = [int(s) for s in os.environ.get("AUDIENCE_SIZES", "1000,10000,100000").split(",")]
    ddb = boto3.client("dynamodb", endpoint_url=dynamodb)
    tmp = tempfile.mkdtemp()
    proxy_port = free_port()
    proxy = ThreadingHTTPServer(("127.0.0.1", proxy_port), make_proxy(dynamodb))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    out = []
    try:
        for n in sizes:
            stack = f"baud{n}x{int(time.time())}"
            runner = Runner(binary, f"http://127.0.0.1:{proxy_port}", stack)
            runner.start()
            try:
                t0 = time.time()
                p = runner.project()
                path = os.path.join(tmp, f"aud{n}.csv")
                audience(path, n)
                job = runner.create_import(p, os.path.basename(path))
                upload(job["upload_url"], path)
                state = wait_in_emulator(ddb, f"{stack}-Table", p["id"], job["id"])
                print(f"bench: audience {n}: imported ({state}) in {time.time() - t0:.0f} s", file=sys.stderr)
                for q in QUERIES:
                    with lock:
                        counts.clear()
                        items_read.clear()
                    _, page = call("GET", f"{runner.base}/v1/projects/{p['id']}/contacts?limit=50&{q}", p["api_key"])
                    with lock:
                        snap, items = dict(counts), items_read["items"]
                    out.append({"contacts": n, "query": q, "returned": len(page["data"]),
                                "requests": sum(snap.values()), "items_read": items,
                                "by_operation": dict(sorted(snap.items()))})
            finally:
                runner.kill()
    finally:
        proxy.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
