"""Report the size of every function package `sam build` made, check each is arm64, and
gate the size: a package zipped past its budget fails.

    python3 .ci/package-sizes.py [.aws-sam/build] [--budgets .ci/package-budgets.json]
Prints one line per function (bootstrap bytes, zipped bytes as Lambda receives it, budget)
and a total; exits non-zero if a function has no bootstrap, is not an aarch64 ELF
executable, has no budget, or is zipped larger than its budget.
"""

import io
import json
import os
import struct
import sys
import zipfile

EM_AARCH64 = 183


def machine(path: str) -> int:
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        return -1
    return struct.unpack("<H", header[18:20])[0]


def zipped(path: str) -> int:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return buf.tell()


def main(build: str, budgets_path: str) -> int:
    with open(budgets_path) as f:
        budgets = json.load(f)["zipped_bytes"]
    bad = []
    total_raw = total_zip = 0
    names = sorted(n for n in os.listdir(build) if os.path.isdir(os.path.join(build, n)))
    functions = [n for n in names if n.endswith("Function")]
    if not functions:
        print(f"no function packages under {build}")
        return 1
    print(f"{'function':32} {'bootstrap':>12} {'zipped':>12} {'budget':>12}")
    for name in functions:
        path = os.path.join(build, name, "bootstrap")
        if not os.path.isfile(path):
            bad.append(f"{name}: no bootstrap")
            continue
        if machine(path) != EM_AARCH64:
            bad.append(f"{name}: bootstrap is not an aarch64 executable")
        raw, packed = os.path.getsize(path), zipped(path)
        total_raw += raw
        total_zip += packed
        budget = budgets.get(name)
        if budget is None:
            bad.append(f"{name}: no budget in {budgets_path}")
        elif packed > budget:
            bad.append(f"{name}: {packed:,} bytes zipped is over its budget of {budget:,}")
        print(f"{name:32} {raw:>12,} {packed:>12,} {budget or 0:>12,}")
    print(f"{'total':32} {total_raw:>12,} {total_zip:>12,}")
    for b in bad:
        print(f"FAIL {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--budgets")]
    budgets = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--budgets=")),
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "package-budgets.json"))
    sys.exit(main(args[0] if args else ".aws-sam/build", budgets))
