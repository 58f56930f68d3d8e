"""``denoise-data list`` | ``denoise-data get NAME [NAME ...] [--data-dir DIR] [--unverified]``: the standard test
sets, Train400 and the authors' weights, fetched from where they are published, checked by sha256 and laid out
under ``paths.data_dir`` (``DENOISE_DATA``, else ``data/``); the datasets without a direct link (SIDD, NIND,
RENOIR) say where to download them and where to put them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from denoise.cli import add_version

DESCRIPTION = (
    "Fetch the standard test sets, Train400 and the authors' released weights from where they are published, "
    "checked file by file by sha256, into the data folder (DENOISE_DATA, else ./data); for SIDD, NIND and RENOIR, "
    "which have no direct link, it says where to download them and where to put them."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="denoise-data", description=DESCRIPTION)
    add_version(parser)
    parser.add_argument("--data-dir", type=Path, help="where the data lands (default: DENOISE_DATA, else ./data)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="every dataset and weights file, its size, terms, and whether it is here")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    get = verbs.add_parser("get", help="download, check and unpack entries of the list")
    for verb in (listing, get):  # after the verb too (`denoise-data get set12 --data-dir DIR`)
        verb.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="where the data lands")
    get.add_argument("names", nargs="+", metavar="NAME", help="entries of `denoise-data list` (e.g. set12 bsd68)")
    get.add_argument("--unverified", action="store_true",
                     help="also fetch entries published without a pinned sha256 (it is printed)")  # fmt: skip
    return parser


def _size(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**20:.1f} MB"


def list_entries(data_dir: Path, as_json: bool = False) -> int:
    """Every entry: what it is, its size, how to get it, its terms, where it lands and whether it is there; a
    table on a terminal, full-width plain rows in a pipe, or JSON."""
    from denoise.data.catalog import catalog, present
    from denoise.data.console import show_table

    rows = []
    for entry in catalog().values():
        how = {"files": "get", "archive": "get", "file": "get", "manual": "by hand"}[entry.kind]
        if entry.kind in ("archive", "file") and entry.spec[entry.kind].get("sha256") is None:
            how = "get --unverified"
        rows.append({"name": entry.name, "what": entry.what, "size": _size(entry.bytes()), "how": how,
                     "terms": entry.terms, "lands in": str(data_dir / entry.target),
                     "here": "yes" if present(entry, data_dir) else "-"})  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    title = f"denoise-data: lands under {data_dir} (DENOISE_DATA or --data-dir to move it)"
    show_table(title, list(rows[0]) if rows else ["name"], [list(row.values()) for row in rows], right=("size",))
    return 0


def get_entries(names: Sequence[str], data_dir: Path, unverified: bool) -> int:
    from denoise.data.catalog import CatalogError, catalog, manual_text, present
    from denoise.data.console import Steps
    from denoise.data.fetch import ManualDownloadError, get

    entries = catalog()
    unknown = [name for name in names if name not in entries]
    if unknown:
        print(f"denoise-data: error: unknown {unknown}; expected some of {sorted(entries)}", file=sys.stderr)
        return 2
    failed = 0
    for name in dict.fromkeys(names):
        entry = entries[name]
        if entry.kind == "manual":  # nothing to download: where to get it, by hand (an answer, not an error)
            here = present(entry, data_dir)
            print(f"{name}: in place in {data_dir / entry.target}" if here else manual_text(entry, data_dir))
            continue
        try:
            with Steps(f"denoise-data get {name}", entry.bytes(), "bytes") as progress:
                lines = get(entry, data_dir, unverified, progress.advance, entries)
            print("\n".join(lines))
        except ManualDownloadError as err:
            print(str(err))
        except CatalogError as err:
            print(f"denoise-data: error: {name}: {err}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from denoise.data.catalog import CatalogError, default_data_dir

    data_dir = args.data_dir or default_data_dir()
    try:
        if args.verb == "list":
            return list_entries(data_dir, args.json)
        return get_entries(args.names, data_dir, args.unverified)
    except (CatalogError, OSError) as err:
        print(f"denoise-data: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
