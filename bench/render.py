"""Writes bench/README.md from the JSON the bench steps print."""
import datetime
import json
import os
import platform
import subprocess
import sys


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}; {rustc}"


def main():
    cold = [json.loads(line) for line in sys.argv[1].splitlines() if line.strip()]
    counts = json.loads(sys.argv[2])
    parse = json.loads(sys.argv[3])
    rss = [json.loads(line) for line in sys.argv[4].splitlines() if line.strip()]
    imports = json.loads(sys.argv[5])
    imports.update(json.loads(sys.argv[6]))
    audience = json.loads(sys.argv[7]) if len(sys.argv) > 7 else []
    by_name = {c["binary"]: c for c in cold}
    hello, sdk = by_name["floor-hello"], by_name["floor-sdk"]
    out = []
    w = out.append
    w("# Benchmarks\n")
    w(f"- Command: `make bench` (runs `bench/run.sh`)")
    w(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    w(f"- Machine: {machine()}")
    w("- Binaries: native release builds (`lto`, `codegen-units = 1`, `strip`, `panic = \"abort\"`); "
      "the deployed artifacts are the same code built for arm64 by `cargo lambda build --release --arm64`.\n")
    w("## Function binaries: size, init time, peak RSS\n")
    w("Init is process start until the binary first polls `/runtime/invocation/next` on a local stand-in "
      f"for the Lambda Runtime API (median and p90 of {hello['runs']} runs); peak RSS is `VmHWM` at that poll. "
      "Floors, built and measured in the same run: `floor-hello` is a hello-world `lambda_http` function; "
      "`floor-sdk` is the same plus building the AWS SDK config and the DynamoDB client, as the api does.\n")
    w("| binary | size (MiB) | init median (ms) | init p90 (ms) | peak RSS (MiB) | init ÷ hello | init ÷ sdk floor | RSS ÷ hello | RSS ÷ sdk floor |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cold:
        w(f"| {c['binary']} | {c['size_bytes'] / 2**20:.2f} | {c['init_ms_median']} | {c['init_ms_p90']} | {c['peak_rss_mb_median']} | "
          f"{c['init_ms_median'] / hello['init_ms_median']:.2f} | {c['init_ms_median'] / sdk['init_ms_median']:.2f} | "
          f"{c['peak_rss_mb_median'] / hello['peak_rss_mb_median']:.2f} | {c['peak_rss_mb_median'] / sdk['peak_rss_mb_median']:.2f} |")
    w("")
    w(f"Building the SDK clients costs {sdk['init_ms_median'] - hello['init_ms_median']:.1f} ms of init and "
      f"{sdk['peak_rss_mb_median'] - hello['peak_rss_mb_median']:.1f} MiB of RSS over the hello-world floor: "
      "the credential and region provider chains, and the HTTPS client's TLS set-up, where rustls loads the "
      "platform's root certificates (`strace` shows one `openat` per file of `/etc/ssl/certs` on this machine).")
    bundled = by_name.get("floor-sdk (roots: one bundle file)")
    if bundled:
        w(f"Reading the roots from one bundle file instead (`SSL_CERT_FILE`, no cert directory) brings the SDK floor "
          f"from {sdk['init_ms_median']} ms to {bundled['init_ms_median']} ms: root loading is "
          f"{(sdk['init_ms_median'] - bundled['init_ms_median']) / (sdk['init_ms_median'] - hello['init_ms_median']) * 100:.0f}% "
          "of what the clients cost here. On Lambda (AL2023) the roots are one bundle, `/etc/pki/tls/certs/ca-bundle.crt`.")
    w("")
    w("## DynamoDB requests per API call\n")
    w("Counted by a proxy between the local runner and the emulator, by operation, averaged over the calls. "
      "Every project-scoped call includes one `GetItem` of the project (key check and settings); every public "
      "submission also two `UpdateItem`s for its rate-limit windows (per IP, per project).\n")
    w("| call | requests | by operation |")
    w("|---|---:|---|")
    for r in counts:
        ops = ", ".join(f"{k} {v:g}" for k, v in r["by_operation"].items())
        w(f"| {r['call']} | {r['requests_per_call']:g} | {ops} |")
    w("")
    render_imports(w, parse, rss, imports)
    render_audience(w, audience)
    print("\n".join(out))


def render_audience(w, audience):
    # A list of rows, or {"rows": […], "notes": […]} when a run needs explaining.
    rows, notes = (audience, []) if isinstance(audience, list) else (audience["rows"], audience.get("notes", []))
    if not rows:
        return
    sizes = sorted({r["contacts"] for r in rows})
    w("## Audience list: first page cost by project size\n")
    w("The first page (`limit=50`) of every sort in both directions, of `q` by email prefix (`person12`) and of a "
      "tag filter matching 1% of contacts (`tags=Rare`), in projects loaded through the import pipeline. Requests "
      "and items read (index entries and items the emulator returned) counted by the proxy; each call includes "
      "one `GetItem` of the project (the tag filter one more, of the tag). Contact lists are 32 index shards, "
      "search 128. Each shard is first read for the fewest entries that leave a second read of any shard "
      "under a 1% chance (ids are hashed to shards; at `limit=50`: 8 entries of each of 32 shards, 5 of each of 128), "
      "and read again only when it holds more of the page than that. A filtered page reads its narrowest stream "
      "(the tag's member shards) for `limit` candidates first, then twice as many each further read, until the "
      "page is full.\n")
    w("| query | " + " | ".join(f"{n:,} contacts: requests / items read" for n in sizes) + " |")
    w("|---|" + "---:|" * len(sizes))
    for q in dict.fromkeys(r["query"] for r in rows):
        cells = []
        for n in sizes:
            r = next((r for r in rows if r["contacts"] == n and r["query"] == q), None)
            cells.append(f"{r['requests']} / {r['items_read']:,}" if r else "—")
        w(f"| `{q}` | " + " | ".join(cells) + " |")
    for line in notes:
        w(f"\n{line}")
    w("")


# What a worker would reach against real DynamoDB: rows of a batch that need
# a request each go IN_FLIGHT at a time; batched calls go one after another.
IN_FLIGHT = 8
LATENCY_MS = 10


def projected_rows_per_second(r):
    ops = r["by_operation_per_1000_rows"]
    per_row = sum(v for k, v in ops.items() if k in ("PutItem", "UpdateItem") and v >= 500)
    sequential = sum(ops.values()) - per_row
    round_trips = sequential + per_row / IN_FLIGHT
    return 1000 / (round_trips * LATENCY_MS / 1000)


def render_imports(w, parse, rss, imports):
    w("## Imports\n")
    w(f"### Parse, map and normalize: {parse['rows']:,} rows ({parse['file_mib']} MiB, {parse['chunks']} chunks)\n")
    w("The import's read path run on a file in memory, against a bare `csv` `ByteRecord` parse of the same file in "
      "the same run (rows counted, fields untouched; the fastest of three passes). Two functions touch every row: the planner scans the file once "
      "into chunks (record boundaries only), and a chunk worker parses its rows into cells, maps them to fields, "
      "normalizes them (email, names, phone to E.164) and validates them into a contact change. The worker's stages "
      "each include the ones above; the last row is the planner and the worker together, the CPU an import spends "
      "on a row. Target: ratio ≥ 0.3.\n")
    w(f"| stage | rows/s | ÷ bare csv ({parse['bare_csv_rows_per_second']:,.0f} rows/s) | ns / row |")
    w("|---|---:|---:|---:|")
    for st in parse["stages"]:
        w(f"| {st['stage']} | {st['rows_per_second']:,.0f} | {st['ratio']} | {1e9 / st['rows_per_second']:,.0f} |")
    if "phone_metadata_load_ms" in parse:
        w(f"\nNot in the rates: loading the phone metadata on the first phone of a process, "
          f"{parse['phone_metadata_load_ms']:.0f} ms (once per Lambda container). Phone validity is decided from "
          "`phonenumber`'s own metadata with each pattern compiled once (`shared/src/domain/phone_validity.rs`, "
          "tested equal to `phonenumber::is_valid`); parsing is still the crate's.")
    w("")
    w("### Peak memory of the planner and a chunk worker\n")
    w("`import-rss` uploads a synthetic file to the emulator's S3 (multipart, 8 MiB parts), runs the planner on it "
      "(one streamed pass), then a chunk worker on the first chunk (10,000 rows), in one process, resetting the "
      "peak (`/proc/self/clear_refs`) between the two. Target: ≤ 128 MB, flat in file size.\n")
    w("| file (MiB) | rows | chunks | plan (s) | planner peak RSS (MiB) | worker peak RSS (MiB) | worker: rows, s |")
    w("|---:|---:|---:|---:|---:|---:|---|")
    for r in rss:
        w(f"| {r['file_mib']} | {r['rows']:,} | {r['chunks_total']} | {r['plan_seconds']} | {r['planner_peak_rss_mib']} | "
          f"{r['worker_peak_rss_mib']} | {r['rows_imported']:,} rows in {r['worker_seconds']} s |")
    w("")
    w("### DynamoDB requests per 1,000 rows\n")
    w("Counted by the proxy from upload to completion (the planner, the chunk workers, the ledger; the watching is "
      "done straight in the emulator and not counted). Chunks of 1,000 rows. Targets: all-new ≤ 1,100, "
      "all-existing ≤ 1,050.\n")
    w(f"| import | rows | created | updated | requests / 1,000 rows | by operation | one worker vs real DynamoDB (rows/s) |")
    w("|---|---:|---:|---:|---:|---|---:|")
    for r in imports["requests"]:
        ops = ", ".join(f"{k} {v:g}" for k, v in r["by_operation_per_1000_rows"].items())
        w(f"| {r['import']} | {r['rows']:,} | {r['created']:,} | {r['updated']:,} | {r['requests_per_1000_rows']:g} | {ops} | "
          f"{projected_rows_per_second(r):,.0f} |")
    w("")
    w(f"The last column models one chunk worker against real DynamoDB: the per-row requests (conditional claims, "
      f"merges) go {IN_FLIGHT} at a time, as the worker sends them; the batched ones (reads of the claims, "
      f"BatchWriteItem, the claim transactions, the ledger commit) one after another; every request takes {LATENCY_MS} ms. "
      f"rows/s = 1000 ÷ ((batched + per-row ÷ {IN_FLIGHT}) × {LATENCY_MS} ms). A new row's identities are "
      f"claimed in `TransactWriteItems` of up to 100 conditional puts (all or none; a cancelled one, when a value "
      f"was taken since the claims were read, is redone row by row): one request for up to 100 rows, at twice the "
      f"write units of the same puts made one by one.\n")
    w("### End to end and faults\n")
    w("`make bench` runs on `bench/moto_server.py`: the emulator of `make test` and `make dev` (`infra/emulator.py`, moto "
      "with each DynamoDB request atomic), with its sorted list of a table's items kept between writes (the same "
      "answers; pages of a project nobody writes to no longer re-sort the whole table).\n")
    w("| run | rows | result |")
    w("|---|---:|---|")
    wall = imports.get("wall")
    if wall:
        created = f", {wall['created']:,} created" if wall.get("created") is not None else ""
        w(f"| {wall.get('label', 'upload → completed')}, against the emulator (4 local chunk workers, chunks of 10,000) | {wall['rows']:,} | "
          f"{wall['seconds']} s ({wall['rows_per_second']:,.1f} rows/s), {wall['state']}{created}, {wall['chunks']} chunks |")
    f = imports.get("fault")
    if f:
        w(f"| runner killed (SIGKILL) at {f['processed_at_kill']:,} rows processed, started again | {f['rows']:,} | "
          f"{f['state']}: {f['created']:,} created, {f['updated']} updated, {f['failed']} failed, {f['processed']:,} processed; "
          f"{f['contacts']:,} contacts in the project; exact: {'yes' if f['exact'] else 'NO'} |")
    for line in imports.get("notes", []):
        w(f"\n{line}")
    w("")

if __name__ == "__main__":
    main()
