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
    print("\n".join(out))


if __name__ == "__main__":
    main()
