#!/usr/bin/env python3
"""The table of bench/ncu-attention.sh: Nsight Compute's raw counts of one dense and one sparse
attention launch, side by side and per tile (one 64 x 64 (query block, key block) pair: the unit
of work of both launches), so that "a sparse tile costs more than a dense one" reads as a ratio
per metric.

    python3 bench/ncu_table.py DIR METRIC...

DIR holds {dense,sparse}-raw.csv (`ncu --import R --page raw --csv --print-units base`) and
{dense,sparse}.log (the profiled run's output, with bench/one-launch.js's line `one-launch: tiles N`).
Prints markdown. Counts (.sum) are also given per tile; rates and percentages only side by side.
"""
import csv
import os
import re
import sys


def read_raw(path):
    """{metric: (value, unit)} of the first kernel row of an ncu raw CSV page."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    # ncu may print ==PROF== or warning lines first: the header is the row that names "Kernel Name"
    start = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if start is None or len(rows) < start + 3:
        raise ValueError(f"{path}: no kernel row")
    header, units, values = rows[start], rows[start + 1], rows[start + 2]
    return {h: (values[i] if i < len(values) else "", units[i] if i < len(units) else "") for i, h in enumerate(header)}


def read_tiles(path):
    with open(path, errors="replace") as f:
        m = re.search(r"one-launch: tiles (\d+)", f.read())
    return int(m.group(1)) if m else None


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def fmt(x):
    if x is None:
        return "n/a"
    return f"{x:.4g}"


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    d, metrics = argv[1], argv[2:]
    runs, tiles = {}, {}
    for what in ("dense", "sparse"):
        try:
            runs[what] = read_raw(os.path.join(d, f"{what}-raw.csv"))
        except (OSError, ValueError) as e:
            print(f"ncu_table: {e}")
            return 1
        tiles[what] = read_tiles(os.path.join(d, f"{what}.log"))
    name = runs["dense"].get("Kernel Name", ("?", ""))[0]
    print(f"## Nsight Compute: one launch each ({name})")
    print()
    print(f"tiles: dense {tiles['dense']}, sparse {tiles['sparse']}")
    print()
    print("| metric | unit | dense | sparse | sparse / dense | dense per tile | sparse per tile | sparse / dense per tile |")
    print("|---|---|---|---|---|---|---|---|")
    for m in metrics:
        if m not in runs["dense"] and m not in runs["sparse"]:
            print(f"| {m} | | not collected | | | | | |")
            continue
        dv, unit = runs["dense"].get(m, ("", ""))
        sv, _ = runs["sparse"].get(m, ("", ""))
        a, b = number(dv), number(sv)
        ratio = b / a if a and b is not None else None
        per = m.endswith(".sum") and tiles["dense"] and tiles["sparse"]
        pa = a / tiles["dense"] if per and a is not None else None
        pb = b / tiles["sparse"] if per and b is not None else None
        pr = pb / pa if pa and pb is not None else None
        print(f"| {m} | {unit} | {fmt(a) if a is not None else dv} | {fmt(b) if b is not None else sv} | {fmt(ratio)} | "
              f"{fmt(pa) if per else ''} | {fmt(pb) if per else ''} | {fmt(pr) if per else ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
