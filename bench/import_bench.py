"""Import benchmarks against the emulator (run by `make bench`).

1. DynamoDB requests per 1,000 rows, all-new and all-existing (and all-new
   with a phone per row), counted by a proxy between the local runner and
   the emulator, from upload to completion; completion is watched directly
   in the emulator so the watching is not counted.
2. Wall time of a ROWS_E2E-row import end to end (upload → completed).
3. Faults: a FAULT_ROWS-row import, the runner killed (SIGKILL) part way and
   started again: the import must finish with exact counts and no duplicates.

Usage: python bench/import_bench.py MOTO_URL RUNNER
Prints JSON.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import ThreadingHTTPServer

import boto3

sys.path.insert(0, os.path.dirname(__file__))
from ddb_count import call, counts, lock, make_proxy  # noqa: E402

ADMIN = "bench-admin-token"


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def people(path, n, offset=0, phones=False):
    with open(path, "w") as f:
        f.write("email,first_name,last_name,company" + (",phone" if phones else "") + "\n")
        for i in range(offset, offset + n):
            row = f"person{i}@example.com,First{i},Last{i},Company {i % 97}"
            if phones:
                row += f",+1415{(2000000 + i) % 10000000:07d}"
            f.write(row + "\n")


class Runner:
    def __init__(self, binary, endpoint, stack, chunk_rows=None):
        self.binary, self.endpoint, self.stack = binary, endpoint, stack
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.chunk_rows = chunk_rows
        self.proc = None

    def start(self):
        env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=self.endpoint, PORT=str(self.port), STACK_NAME=self.stack,
                   RUST_LOG=os.environ.get("RUNNER_LOG", "warn"), ADMIN_TOKEN=ADMIN)
        if self.chunk_rows:
            env["IMPORT_CHUNK_ROWS"] = str(self.chunk_rows)
        log = open(os.path.join(tempfile.gettempdir(), f"{self.stack}.log"), "a")
        self.proc = subprocess.Popen([self.binary], env=env, stdout=log, stderr=log)
        # Provisioning against an emulator holding a 100k-row project takes
        # minutes: each of its queries walks the whole table.
        deadline = time.time() + 900
        while time.time() < deadline and self.proc.poll() is None:
            try:
                urllib.request.urlopen(self.base + "/health")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("runner did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def project(self):
        _, p = call("POST", self.base + "/v1/projects", ADMIN, {"name": "bench"})
        return p

    def create_import(self, p, filename):
        _, job = call("POST", f"{self.base}/v1/projects/{p['id']}/imports", p["api_key"], {"filename": filename})
        return job

    def status(self, p, job_id):
        return call("GET", f"{self.base}/v1/projects/{p['id']}/imports/{job_id}", p["api_key"])[1]


def upload(url, path):
    """PUTs the file to a presigned URL (S3 is the emulator's, not behind the proxy)."""
    with open(path, "rb") as f:
        data = f.read()
    # An explicit type: urllib would send a form type, which the emulator reads as a form.
    req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "text/csv"})
    urllib.request.urlopen(req).read()


def wait_in_emulator(ddb, table, pid, job_id, timeout=3600):
    """Polls the job item straight from the emulator (not through the proxy)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        item = ddb.get_item(TableName=table, Key={"PK": {"S": f"P#{pid}#IMPORT#{job_id}"}, "SK": {"S": "IMPORT"}}).get("Item", {})
        state = item.get("state", {}).get("S")
        if state in ("completed", "failed", "cancelled"):
            return state
        time.sleep(0.5)
    raise RuntimeError("import did not finish")


def counted_import(runner, ddb, table, p, path, label, rows):
    job = runner.create_import(p, os.path.basename(path))
    with lock:
        counts.clear()
    upload(job["upload_url"], path)
    print(f"bench: {label}: uploaded", file=sys.stderr)
    state = wait_in_emulator(ddb, table, p["id"], job["id"])
    with lock:
        snap = dict(counts)
    s = runner.status(p, job["id"])
    total = sum(snap.values())
    return {
        "import": label,
        "rows": rows,
        "state": state,
        "created": s["created"],
        "updated": s["updated"],
        "requests_per_1000_rows": round(total * 1000 / rows, 1),
        "by_operation_per_1000_rows": {k: round(v * 1000 / rows, 1) for k, v in sorted(snap.items())},
    }


def wait_api(runner, p, job_id, until=None, timeout=7200):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = runner.status(p, job_id)
        assert s["created"] + s["updated"] + s["skipped"] + s["failed"] == s["processed"], s
        if s["state"] in ("completed", "failed", "cancelled") or (until and until(s)):
            return s
        time.sleep(0.5)
    raise RuntimeError("import did not finish")


def count_contacts(runner, p):
    """Live contacts, counted by the API's index count (`total=true`): one
    COUNT query per shard rather than every page (the emulator's index
    queries slow down with the table's size)."""
    _, page = call("GET", f"{runner.base}/v1/projects/{p['id']}/contacts?limit=1&total=true", p["api_key"])
    return page["total"]


def main():
    dynamodb, binary = sys.argv[1], sys.argv[2]
    rows_counted = int(os.environ.get("ROWS_COUNTED", "2000"))
    rows_e2e = int(os.environ.get("ROWS_E2E", "100000"))
    fault_rows = int(os.environ.get("FAULT_ROWS", "50000"))
    ddb = boto3.client("dynamodb", endpoint_url=dynamodb)
    phases = os.environ.get("PHASES", "requests,wall,fault").split(",")
    tmp = tempfile.mkdtemp()
    out = {}

    if "requests" in phases:
        out["requests"] = requests_per_row(binary, dynamodb, ddb, tmp, rows_counted)
    if "wall" in phases:
        out["wall"] = wall_time(binary, dynamodb, tmp, rows_e2e)
    if "fault" in phases:
        out["fault"] = kill_and_restart(binary, dynamodb, tmp, fault_rows)
    print(json.dumps(out))


def requests_per_row(binary, dynamodb, ddb, tmp, rows_counted):
    """1. Requests per 1,000 rows, through the counting proxy."""
    proxy_port = free_port()
    proxy = ThreadingHTTPServer(("127.0.0.1", proxy_port), make_proxy(dynamodb))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    stack = f"bcount{int(time.time())}"
    runner = Runner(binary, f"http://127.0.0.1:{proxy_port}", stack, chunk_rows=1000)
    runner.start()
    try:
        table = f"{stack}-Table"
        p = runner.project()
        new = os.path.join(tmp, "new.csv")
        people(new, rows_counted)
        phones = os.path.join(tmp, "phones.csv")
        people(phones, rows_counted, offset=10_000_000, phones=True)
        return [
            counted_import(runner, ddb, table, p, new, "all new (email, names, company)", rows_counted),
            counted_import(runner, ddb, table, p, new, "all existing (the same file again)", rows_counted),
            counted_import(runner, ddb, table, p, phones, "all new, with a phone per row", rows_counted),
        ]
    finally:
        runner.kill()
        proxy.shutdown()


def wall_time(binary, dynamodb, tmp, rows_e2e):
    """2. Wall time end to end, straight to the emulator."""
    stack = f"bwall{int(time.time())}"
    runner = Runner(binary, dynamodb, stack)
    runner.start()
    try:
        p = runner.project()
        path = os.path.join(tmp, "wall.csv")
        people(path, rows_e2e)
        job = runner.create_import(p, "wall.csv")
        t0 = time.time()
        upload(job["upload_url"], path)
        s = wait_api(runner, p, job["id"])
        wall = time.time() - t0
        return {"error": s.get("error"), "rows": rows_e2e, "seconds": round(wall, 1), "rows_per_second": round(rows_e2e / wall, 1),
                       "state": s["state"], "created": s["created"], "chunks": s["chunks_total"]}
    finally:
        runner.kill()


def kill_and_restart(binary, dynamodb, tmp, fault_rows):
    """3. Kill the runner mid-import, start it again."""
    stack = f"bfault{int(time.time())}"
    runner = Runner(binary, dynamodb, stack, chunk_rows=5000)
    runner.start()
    try:
        p = runner.project()
        path = os.path.join(tmp, "fault.csv")
        people(path, fault_rows)
        job = runner.create_import(p, "fault.csv")
        upload(job["upload_url"], path)
        at_kill = wait_api(runner, p, job["id"], until=lambda s: s["processed"] >= fault_rows // 3)
        runner.kill()
        runner.start()
        try:
            s = wait_api(runner, p, job["id"], timeout=3600)
        except RuntimeError:
            s = dict(runner.status(p, job["id"]), state="did not finish within an hour of the restart")
        contacts = count_contacts(runner, p)
        return {"rows": fault_rows, "processed_at_kill": at_kill["processed"], "state": s["state"],
                        "created": s["created"], "updated": s["updated"], "failed": s["failed"],
                        "processed": s["processed"], "contacts": contacts,
                        "exact": s["state"] == "completed" and s["created"] == fault_rows == contacts == s["processed"]}
    finally:
        runner.kill()


if __name__ == "__main__":
    main()
