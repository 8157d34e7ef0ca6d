"""What a release binary's bytes are, by crate, against the SDK floor.

usage: bloat.py BINARY FLOOR [ROWS]

Both binaries are built with the `bloat` profile (release with its symbol
table: `cargo build --profile bloat`). Sections come from the ELF header;
a symbol's bytes go to the crate that owns the code: the crate of its path,
for a trait method the crate of the type (or of the trait, for std types),
for drop glue the crate of the dropped type. C and assembly symbols (no
`::`) are aws-lc's, the TLS crypto. Prints markdown tables.
"""
import collections
import re
import subprocess
import sys

STD = {"core", "alloc", "std", "hashbrown"}
PRIMITIVE = re.compile(r"^(?:[A-Z].*|u8|u16|u32|u64|usize|i32|i64|f64|bool|str|char)$")


def crate_of(name):
    if "::" not in name:
        return "aws-lc (C, assembly)"
    n = name
    drop = re.match(r"core::ptr::drop_in_place<(.*)>$", n)
    if drop:
        n = re.sub(r"^[&*(\[]*(?:mut |const |dyn )*", "", drop.group(1))
    if n.startswith("<"):
        head = re.match(r"<[&*(\[]*(?:mut |const |dyn )*([A-Za-z_][A-Za-z0-9_]*)", n)
        crate = head.group(1) if head else "?"
        if crate in STD or PRIMITIVE.match(crate):
            trait = re.search(r" as ([a-z_][a-z0-9_]*)::", n)
            inner = re.search(r"<([a-z_][a-z0-9_]*)::", n[1:])
            for found in (trait, inner):
                if found and found.group(1) not in STD:
                    return found.group(1)
            return trait.group(1) if trait else "core"
        return crate
    crate = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", n).group(1)
    if crate in STD:
        generic = re.search(r"<[&*(\[]*(?:mut |const |dyn )*([a-z_][a-z0-9_]*)::", n)
        if generic and generic.group(1) not in STD:
            return generic.group(1)
    return crate


def sections(path):
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)", line)
        # Only what a stripped binary keeps: allocated sections.
        if m and "A" in m.group(5):
            found[m.group(1)] = int(m.group(4), 16)
    return found


def by_crate(path):
    out = subprocess.run(["nm", "-S", "-C", path], capture_output=True, text=True, check=True).stdout
    sizes = collections.Counter()
    for line in out.splitlines():
        # address, size, type, name; code and data only (bss takes no bytes in the file)
        m = re.match(r"[0-9a-f]+ ([0-9a-f]+) ([tTrRdD]) (.*)$", line)
        if m:
            sizes[crate_of(m.group(3))] += int(m.group(1), 16)
    return sizes


def mib(n):
    return f"{n / 2**20:.2f}"


def main():
    binary, floor = sys.argv[1], sys.argv[2]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    sb, sf = sections(binary), sections(floor)
    print("| section | binary (MiB) | floor (MiB) | binary − floor |")
    print("|---|---:|---:|---:|")
    for name in sorted(set(sb) | set(sf), key=lambda s: -sb.get(s, 0)):
        if max(sb.get(name, 0), sf.get(name, 0)) >= 2**16:
            print(f"| `{name}` | {mib(sb.get(name, 0))} | {mib(sf.get(name, 0))} | {mib(sb.get(name, 0) - sf.get(name, 0))} |")
    print(f"| all allocated sections | {mib(sum(sb.values()))} | {mib(sum(sf.values()))} | {mib(sum(sb.values()) - sum(sf.values()))} |")
    print()
    cb, cf = by_crate(binary), by_crate(floor)
    order = sorted(set(cb) | set(cf), key=lambda c: -(cb[c] - cf[c]))
    print("| crate | binary (MiB) | floor (MiB) | binary − floor |")
    print("|---|---:|---:|---:|")
    for c in order[:rows]:
        print(f"| `{c}` | {mib(cb[c])} | {mib(cf[c])} | {mib(cb[c] - cf[c])} |")
    rest_b = sum(cb[c] for c in order[rows:])
    rest_f = sum(cf[c] for c in order[rows:])
    print(f"| {len(order) - rows} other crates | {mib(rest_b)} | {mib(rest_f)} | {mib(rest_b - rest_f)} |")
    print(f"| all named symbols | {mib(sum(cb.values()))} | {mib(sum(cf.values()))} | {mib(sum(cb.values()) - sum(cf.values()))} |")


if __name__ == "__main__":
    main()
