"""Writes bench/README.md from the JSON the bench steps print."""
import datetime
import json
import math
import os
import platform
import re
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


# A step not run (a run stopped early) leaves its section out.
# bench/run.sh's steps, in its order.
STEPS = ["cold", "bytes", "counts", "parse", "rss", "latency", "wcu", "imports", "fault", "audience", "render", "broadcast", "exports", "artifacts"]


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def one(path, missing=None):
    if not os.path.exists(path):
        return missing
    with open(path) as f:
        return json.load(f)


def main():
    d = sys.argv[1]
    at = lambda name: os.path.join(d, name)  # noqa: E731
    cold = lines(at("cold"))
    counts = one(at("counts"))
    parse = one(at("parse"))
    rss = lines(at("rss"))
    imports = one(at("imports"), {})
    imports.update(one(at("fault"), {}))
    audience = one(at("audience"), [])
    latency = lines(at("latency"))
    wcu = one(at("wcu"))
    artifacts = lines(at("artifacts"))
    render_bench = one(at("render"))
    broadcast = one(at("broadcast"))
    exports = lines(at("exports"))
    by_name = {c["binary"]: c for c in cold}
    hello, sdk = by_name["floor-hello"], by_name["floor-sdk"]
    out = []
    w = out.append
    w("# Benchmarks\n")
    w(f"- Command: `make bench` (runs `bench/run.sh`)")
    w(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    w(f"- Machine: {machine()}")
    w("- Binaries: native release builds (`lto`, `codegen-units = 1`, `strip`, `panic = \"abort\"`) of the functions "
      "built together and alone, as `make lambda` builds them; the deployed artifacts are the same code built for "
      "arm64 by `make lambda` (`cargo lambda build --release --arm64`, below).")
    stamps = ", ".join(
        f"{name} {datetime.datetime.fromtimestamp(os.path.getmtime(at(name)), datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')}"
        for name in STEPS if os.path.exists(at(name)))
    w(f"- When each step was measured (UTC; `BENCH_RESUME=1` keeps a step's earlier output): {stamps}")
    w("- Emulators: dynoxide 3.2.0 (DynamoDB, in memory) and moto 5.2.5 (S3, SQS, SES), as in `make test` and `make dev`.\n")
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
    render_bytes(w, at("bytes"))
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
    render_artifacts(w, artifacts)
    render_imports(w, parse, rss, imports)
    render_latency(w, latency, wcu)
    render_audience(w, audience)
    render_messaging(w, render_bench, broadcast)
    render_exports(w, exports)
    print("\n".join(out))


def render_bytes(w, path):
    if not os.path.exists(path):
        return
    w("## What the bytes are\n")
    w("`make bloat` (`bench/bloat.py`): the four HTTP functions, built together as `make lambda` builds them, and "
      "the floors `floor-sdk` and `floor-requests` (its clients sending a request each), built alone, all with the "
      "`bloat` profile (release with its symbol table; stripped, the same bytes). First each binary's allocated "
      "sections (what a stripped binary keeps) against the floor; then the sections, and the named symbols by the "
      "crate that owns the code (a trait method goes to its type's crate, drop glue to the dropped type's; symbols "
      "without a Rust path are aws-lc's C and assembly), the biggest excess over the floor first. Unnamed bytes "
      "(string literals, vtables, panic locations, their relocations) are in the sections only.\n")
    with open(path) as f:
        w(f.read())


def render_exports(w, exports):
    if not exports:
        return
    w("## Asynchronous exports\n")
    w("`export-bench` (`bench/import/src/bin/export_bench.rs`), each size in a process and a fresh dynoxide of its own: a "
      "project whose contacts are written as the import writes a new contact's item (email, names, company, phone, referral "
      "code; the claims, search tokens and timeline an export never reads are left out), then the export as the export "
      "worker runs it (CSV, the default 13 columns, into an S3 multipart upload, a running SHA-256), against the emulators, "
      "DynamoDB through the counting proxy (requests, and items read: Query counts, GetItem and BatchGetItem items). The "
      "floor reads the same contacts page by page (the same index queries and batch reads) and writes nothing. Peak RSS "
      "is the process's high-water mark (VmHWM), reset before each step (it starts from what the process holds then).\n")
    w("| contacts | state | rows | MiB written | export s | rows/s | floor s | floor rows/s | ÷ floor | RSS before | floor peak RSS | export peak RSS | DynamoDB requests / 1,000 rows | items read / 1,000 rows | by operation |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for e in exports:
        ops = ", ".join(f"{k} {v:g}" for k, v in e["by_operation_per_1000_rows"].items())
        w(f"| {e['contacts']:,} | {e['state']} | {e['rows']:,} | {(e['bytes'] or 0) / 1048576:.2f} | {e['export_seconds']} | "
          f"{e['rows_per_second']:,.0f} | {e['floor_seconds']} | {e['floor_rows_per_second']:,.0f} | {e['ratio']} | {e['rss_before_mib']} | "
          f"{e['floor_peak_rss_mib']} | {e['export_peak_rss_mib']} | {e['dynamodb_requests_per_1000_rows']:g} | "
          f"{e.get('items_read_per_1000_rows', 0):,.0f} | {ops} |")
    w("")
    w("The export reads pages of 1,000 contacts: a page is the merge of 32 index shard queries (each shard read for a "
      "few more entries than its share, so that a second read is rare: about 2,700 index entries for 1,000 rows), then "
      "10 batch reads of 100 items; the file goes out in 8 MiB parts, each one allocation, filled, sent and freed before "
      "the next. What an export holds is a page and at most one part, so its peak RSS grows until the file first fills "
      "a part and then stays where it is:")
    for e in exports:
        mib = (e["bytes"] or 0) / 1048576
        w(f"- {e['rows']:,} rows ({mib:.1f} MiB, {mib / 8:.1f} parts): peak {e['export_peak_rss_mib']} MiB, "
          f"{e['export_peak_rss_mib'] - e['rss_before_mib']:+.1f} MiB over the process before it.")
    w("")


# What a send worker's recipient costs on AWS, for the projection: DynamoDB's
# and SES's typical in-region latencies, and the recipients a worker sends at once.
DDB_MS = 5
SES_MS = 30
IN_FLIGHT = 8


def render_messaging(w, render_bench, broadcast):
    if not render_bench and not broadcast:
        return
    w("## Messaging\n")
    if render_bench:
        r = render_bench
        w("### Template rendering\n")
        w(f"`render-throughput` (`bench/messaging/src/bin/render_throughput.rs`) renders a realistic email on one core: a subject, "
          f"{r['html_bytes']:,} bytes of html and a text part, {r['variables']} variables (a default, a label, the unsubscribe link), "
          "values HTML-escaped in the html part; the template compiled once, the variables built for every render. The floor "
          "makes the same output (checked equal) by hand: the html cut once into its literal pieces, then pieces and escaped "
          "values pushed into a string, the subject and text with `format!`.\n")
        w("| | renders/s | µs per render | ÷ floor |")
        w("|---|---:|---:|---:|")
        w(f"| minijinja (the send worker's path) | {r['engine_per_sec']:,.0f} | {r['engine_us']} | {r['ratio']} |")
        w(f"| floor: by hand | {r['floor_per_sec']:,.0f} | {r['floor_us']} | 1.000 |")
        w("")
    if broadcast:
        b = broadcast
        n = b["recipients"]
        w("### A broadcast through one send worker\n")
        w(f"`broadcast-bench` (`bench/messaging/src/bin/broadcast_bench.rs`): {n:,} contacts on an email list, a broadcast to "
          "the list sent and worked by one send worker in the same process (its own poller on the send queue), DynamoDB "
          "(a fresh dynoxide) through the counting proxy, SES and SQS the emulator's; the project's send rate at its "
          "maximum (1,000/s) so that the emulators set the pace. Measured from `send` to `completed`. "
          f"Not 100,000: the emulators answer one request at a time, so {n:,} shows the counts per recipient, which do not "
          "depend on the audience's size, in minutes instead of an hour.\n")
        ops = ", ".join(f"{k} {v:g}" for k, v in b["by_operation_per_1000"].items())
        w("| recipients | state | sent | skipped | failed | uncertain | seconds | recipients/s | SQS messages | SES calls | DynamoDB requests / 1,000 recipients | by operation |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        w(f"| {n:,} | {b['state']} | {b['sent']:,} | {b['skipped']} | {b['failed']} | {b['uncertain']} | {b['seconds']} | "
          f"{b['recipients_per_second']} | {b['sqs_messages']} | {b['ses_calls']:,} | {b['dynamodb_per_1000']:g} | {ops} |")
        w("")
        per = b["dynamodb_per_1000"] / 1000
        latency_ms = per * DDB_MS + SES_MS
        rate = IN_FLIGHT * 1000 / latency_ms
        w(f"The emulator was busy {b['emulator_busy_seconds']} s of the {b['seconds']} s. On AWS: a recipient is "
          f"{per:.1f} DynamoDB requests, made one after another (the claim read, the consent reads, the claim, then after "
          "SES the provider-id pointer, the sent status and the contact's counters), and one SES call; at "
          f"{DDB_MS} ms a DynamoDB request and {SES_MS} ms an SES call, a recipient takes about {latency_ms:.0f} ms, and with "
          f"{IN_FLIGHT} recipients in flight one send worker reaches about **{rate:.0f} recipients/s**, unless the project's "
          "send rate is lower (the rate is shared by the send workers, 2 by `MaximumConcurrency`, so each paces at half of it). "
          f"The SQS messages are the plan message and one per chunk of 1,000 recipients.\n")


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
          f"{parse['phone_metadata_load_ms']:.0f} ms (once per Lambda container). Phones are parsed and validated "
          "by `rlibphonenumber` (agrees with Google's libphonenumber on its example numbers: `shared/tests/phone_corpus.rs`).")
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
    w(f"| import | rows | created | updated | requests / 1,000 rows | by operation |")
    w("|---|---:|---:|---:|---:|---|")
    for r in imports.get("requests", []):
        ops = ", ".join(f"{k} {v:g}" for k, v in r["by_operation_per_1000_rows"].items())
        w(f"| {r['import']} | {r['rows']:,} | {r['created']:,} | {r['updated']:,} | {r['requests_per_1000_rows']:g} | {ops} |")
    w("")
    w("A new row's identities are claimed in `TransactWriteItems` of up to 100 conditional puts (all or none; a "
      "cancelled one, when a value was taken since the claims were read, is redone row by row): one request for up "
      "to 100 rows, at twice the write units of the same puts made one by one.\n")
    w("### End to end and faults\n")
    w("Through the running stack (`roster-local`, the runner of `make dev`, a debug build), upload to completion, "
      "polled through the API.\n")
    w("| run | rows | result |")
    w("|---|---:|---|")
    wall = imports.get("wall")
    if wall:
        created = f", {wall['created']:,} created" if wall.get("created") is not None else ""
        w(f"| upload → completed (chunks of 10,000; target ≤ 300 s) | {wall['rows']:,} | "
          f"{wall['seconds']} s ({wall['rows_per_second']:,.1f} rows/s), {wall['state']}{created}, {wall['chunks']} chunks |")
    f = imports.get("fault")
    if f:
        w(f"| runner killed (SIGKILL) at {f['processed_at_kill']:,} rows processed, started again | {f['rows']:,} | "
          f"{f['state']}: {f['created']:,} created, {f['updated']} updated, {f['failed']} failed, {f['processed']:,} processed; "
          f"{f['contacts']:,} contacts in the project; exact: {'yes' if f['exact'] else 'NO'} |")
    for line in imports.get("notes", []):
        w(f"\n{line}")
    w("")

def render_artifacts(w, artifacts):
    if not artifacts:
        return
    w("## Deployed artifacts (arm64)\n")
    by_name = {a["function"]: a for a in artifacts}
    floor, requests = by_name.get("floor-sdk"), by_name.get("floor-requests")
    w("`make lambda`: `cargo lambda build --release --arm64 --output-format zip` of every function of `template.yaml`, "
      "built together; the zip is what `sam deploy` uploads, unzipped is the `bootstrap` binary. The floors are "
      "built the same way, alone: `floor-sdk`, the binary of the size target (unzipped ÷ floor, target ≤ 1.5), and "
      "`floor-requests`, whose DynamoDB and SQS clients send a request each.\n")
    w("| function | zip (MiB) | unzipped (MiB) | unzipped ÷ floor | unzipped ÷ floor-requests |")
    w("|---|---:|---:|---:|---:|")

    def ratio(a, base):
        return f"{a['unzipped_bytes'] / base['unzipped_bytes']:.2f}" if base else "–"

    for a in sorted(artifacts, key=lambda a: (a is not floor, a is not requests)):
        w(f"| {a['function']} | {a['zip_bytes'] / 2**20:.2f} | {a['unzipped_bytes'] / 2**20:.2f} | {ratio(a, floor)} | "
          f"{ratio(a, requests)} |")
    w("")
    size = os.path.join(os.path.dirname(os.path.abspath(__file__)), "size.md")
    if os.path.exists(size):
        with open(size) as f:
            w(f.read().strip() + "\n")


def template_max_concurrency():
    """The chunk worker's MaximumConcurrency in template.yaml."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "template.yaml")
    text = open(root).read()
    block = text[text.index("ImportWorkerFunction:"):]
    return int(re.search(r"MaximumConcurrency:\s*(\d+)", block).group(1))


# A new on-demand table's limit the chunk workers must stay under (the table quota).
TABLE_WCU = 40_000
NEW_TABLE_WCU = 4_000
ROWS_1M, CHUNK = 1_000_000, 10_000


def render_latency(w, latency, wcu):
    if not latency or not wcu:
        return
    w("### One chunk worker against DynamoDB latency\n")
    w("`import-latency` (`bench/import/src/bin/import_latency.rs`) runs the planner and one chunk worker in one "
      "process on a file of new contacts (email, names, company, phone, city: two identities a row) as one chunk, then on the same "
      "file again (every row an existing contact). Every DynamoDB request goes through a proxy that holds it for "
      "the delay before passing it on (`bench/import/src/delay.rs`), DynamoDB's typical in-region latency; S3 is the "
      "emulator's, undelayed. A batch of 200 rows reads its claims in one round, writes contacts, claims, tokens and "
      "activities as batched requests all in flight together (up to 64), merges existing rows 100 at a time, and "
      "commits to the ledger, reading the job's state (has it been cancelled?) in the same round. Target: ≥ 2,000 "
      "rows/s at 5 ms.\n")
    w("The emulator answers one request at a time, where DynamoDB answers many side by side within its latency: "
      "its busy time (at least one request passed on and not answered, measured by the proxy) is the emulator's, "
      "not the worker's. The last column is the run without it: the worker's own rate against a DynamoDB that "
      "answers each request in the delay. The measured rate is the local stack's.\n")
    w("| delay (ms) | pass | rows | seconds | rows/s, measured | emulator busy (s) | rows/s, less the emulator's time | requests / 1,000 rows | by operation |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in latency:
        ops = ", ".join(f"{k} {v:,}" for k, v in r["by_operation"].items())
        w(f"| {r['delay_ms']} | {r['pass']} ({r['created']:,} created, {r['updated']:,} updated) | {r['rows']:,} | "
          f"{r['seconds']} | {r['rows_per_second']:,.0f} | {r['emulator_busy_seconds']} | **{r['rows_per_second_less_emulator']:,.0f}** | "
          f"{r['requests_per_1000_rows']:g} | {ops} |")
    w("")
    w(f"### Write units per contact\n")
    w(f"`bench/wcu.py`: {wcu['rows']} rows imported, then the same file again; every item of the project read "
      "straight from the emulator after each, and the writes between two reads priced by DynamoDB's rules: "
      "ceil(item size ÷ 1 KB) units a write (names and values counted), twice that in a transaction (a new row's "
      "email and phone claims), an update priced at the larger of the item before and after; every GSI whose key "
      f"the item holds costs one unit an entry written (all {wcu['gsis']} are KEYS_ONLY), two when its key changes. "
      "The import's own items (job, ledger) are per chunk and left out.\n")
    w("| contact | item | items / contact | mean size (bytes) | table units / contact | GSI units / contact |")
    w("|---|---|---:|---:|---:|---:|")
    for label in ("new", "existing"):
        for k, v in wcu[label]["by_item"].items():
            w(f"| {label} | `{k}` | {v['per_contact']:g} | {v['mean_bytes']:,} | {v['units_per_contact']:g} | {v['gsi_units_per_contact']:g} |")
        t = wcu[label]
        w(f"| **{label}: total** | | | | {t['table_units_per_contact']:g} | {t['gsi_units_per_contact']:g} (all: **{t['units_per_contact']:g}**) |")
    w("")
    at5 = {r["pass"]: r for r in latency if r["delay_ms"] == 5}
    if "all new" not in at5:
        return
    rate, units = at5["all new"]["rows_per_second_less_emulator"], wcu["new"]["units_per_contact"]
    per_worker = rate * units
    c = template_max_concurrency()
    chunks = ROWS_1M // CHUNK
    rounds = math.ceil(chunks / c)
    worker_bound = rounds * CHUNK / rate
    table_bound = ROWS_1M * units / TABLE_WCU
    new_table_bound = ROWS_1M * units / NEW_TABLE_WCU
    w("### A 1,000,000-row import on AWS, projected\n")
    w(f"At 5 ms one worker writes {rate:,.0f} new contacts/s × {units:g} units = {per_worker:,.0f} WCU/s, against a table "
      f"quota of {TABLE_WCU:,} WCU/s: {TABLE_WCU / per_worker:.2f} workers' worth. `template.yaml` sets the chunk worker's "
      f"`MaximumConcurrency` to **{c}**, the least the SQS event source allows: {c * per_worker:,.0f} WCU/s at full speed, "
      f"{c * per_worker / TABLE_WCU * 100:.0f}% of the quota, so two workers at full speed are held back by DynamoDB "
      "(throttled writes come back unprocessed and are retried with backoff). A 1,000,000-row file is "
      f"{chunks} chunks of {CHUNK:,} rows. Bounded by the workers: {rounds} rounds × {CHUNK / rate:.1f} s = "
      f"{worker_bound / 60:.1f} min; bounded by the table at its quota: {ROWS_1M:,} × {units:g} ÷ {TABLE_WCU:,} = "
      f"{table_bound / 60:.1f} min. Projected: **{max(worker_bound, table_bound) / 60:.1f} minutes** of writing, plus the "
      "planner's one pass over the file and SQS delivery. A brand-new on-demand table starts at 4,000 writes/s of warm "
      f"throughput (AWS: new on-demand tables sustain up to 4,000 writes/s, then scale): {new_table_bound / 60:.0f} min for "
      "the first such import unless the table is pre-warmed (warm throughput set on the table).\n")

if __name__ == "__main__":
    main()
