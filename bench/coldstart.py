"""Cold start of each function binary: process start until it first polls a
local stand-in for the Lambda Runtime API, and its peak RSS at that moment.

Usage: python bench/coldstart.py RUNS BINARY... ; prints one JSON object per binary.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

polled = threading.Event()
poll_time = [0.0]
current_pid = [0]
peak_rss_kb = [0]


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class RuntimeApi(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.endswith("/runtime/invocation/next"):
            poll_time[0] = time.perf_counter()
            try:
                peak_rss_kb[0] = vm_hwm_kb(current_pid[0])
            except OSError:
                peak_rss_kb[0] = 0
            polled.set()
            time.sleep(2)  # hold the long poll; the bench kills the process meanwhile
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    runs = int(sys.argv[1])
    binaries = sys.argv[2:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_LOG_GROUP_NAME="bench",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        TABLE_NAME="bench-table",
        IMPORTS_BUCKET="bench-imports",
        CHUNK_QUEUE_URL="http://127.0.0.1:1/queue/bench-chunks",
        BULK_QUEUE_URL="http://127.0.0.1:1/queue/bench-bulk",
        SEND_QUEUE_URL="http://127.0.0.1:1/queue/bench-send",
        EXPORTS_BUCKET="bench-exports",
        EXPORT_QUEUE_URL="http://127.0.0.1:1/queue/bench-exports",
        SIGNING_SECRET="bench-signing-secret-0123456789abcdef",
        ADMIN_TOKEN="bench-admin-token",
        RUST_LOG="warn",
    )
    for binary in binaries:
        inits, rss = [], []
        for _ in range(runs):
            polled.clear()
            start = time.perf_counter()
            proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            current_pid[0] = proc.pid
            if not polled.wait(10):
                proc.kill()
                raise SystemExit(f"{binary} never polled the runtime API")
            inits.append((poll_time[0] - start) * 1000)
            rss.append(peak_rss_kb[0] / 1024)
            proc.kill()
            proc.wait()
        print(json.dumps({
            "binary": os.path.basename(binary) + os.environ.get("BENCH_LABEL_SUFFIX", ""),
            "size_bytes": os.path.getsize(binary),
            "init_ms_median": round(statistics.median(inits), 2),
            "init_ms_p90": round(sorted(inits)[int(0.9 * (len(inits) - 1))], 2),
            "peak_rss_mb_median": round(statistics.median(rss), 2),
            "runs": runs,
        }))
    server.shutdown()


if __name__ == "__main__":
    main()
