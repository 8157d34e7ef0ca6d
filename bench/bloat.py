"""What release binaries' bytes are, by section and crate, against the SDK floor.

usage: bloat.py FLOOR BINARY... (ROWS=30: crate rows shown)

All binaries are built with the `bloat` profile (release with its symbol
table: `cargo build --profile bloat`). Sections come from the ELF header;
a symbol's bytes go to the crate that owns the code: the crate of its path,
for a trait method the crate of the type (or of the trait, for std types),
for drop glue the crate of the dropped type. C and assembly symbols (no
`::`) are aws-lc's, the TLS crypto. Prints markdown tables.
"""
import collections
import os
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


def name(path):
    return os.path.basename(path)


def table(title, names, floor, binaries, keep):
    """Rows of `title` (section or crate) for the floor and each binary,
    the biggest excess over the floor first; `keep(row)` picks the rows shown."""
    print(f"| {title} | floor | " + " | ".join(f"`{n}`" for n in names) + " |")
    print("|---|" + "---:|" * (len(binaries) + 1))
    rows = sorted(set(floor).union(*binaries), key=lambda k: -max(b.get(k, 0) - floor.get(k, 0) for b in binaries))
    shown = [r for r in rows if keep(r)]
    for r in shown:
        print(f"| `{r}` | {mib(floor.get(r, 0))} | " + " | ".join(mib(b.get(r, 0)) for b in binaries) + " |")
    rest = [r for r in rows if r not in shown]
    if rest:
        print(f"| {len(rest)} others | {mib(sum(floor.get(r, 0) for r in rest))} | "
              + " | ".join(mib(sum(b.get(r, 0) for r in rest)) for b in binaries) + " |")
    print(f"| all | {mib(sum(floor.values()))} | " + " | ".join(mib(sum(b.values())) for b in binaries) + " |")
    print()


def main():
    floor_path, paths = sys.argv[1], sys.argv[2:]
    rows = int(os.environ.get("ROWS", "30"))
    sf = sections(floor_path)
    sb = [sections(p) for p in paths]
    print("| binary | allocated sections (MiB) | ÷ floor |")
    print("|---|---:|---:|")
    print(f"| `{name(floor_path)}` (floor) | {mib(sum(sf.values()))} | 1.00 |")
    for p, s in zip(paths, sb):
        print(f"| `{name(p)}` | {mib(sum(s.values()))} | {sum(s.values()) / sum(sf.values()):.2f} |")
    print()
    names = [name(p) for p in paths]
    table("section", names, sf, sb, lambda r: max(x.get(r, 0) for x in [sf, *sb]) >= 2**16)
    cf = by_crate(floor_path)
    cb = [by_crate(p) for p in paths]
    order = sorted(set(cf).union(*cb), key=lambda c: -max(b[c] - cf[c] for b in cb))
    top = set(order[:rows])
    table("crate", names, cf, cb, lambda r: r in top)


if __name__ == "__main__":
    main()
