"""``denoise-zoo add RUN_DIR [--name NAME] [--data-dir DIR]``: a finished training run packed into a zoo card
(weights in fp16 where the scores hold, sha256, network, recipe, GPU, minutes, steps, and its scores on the
standard benchmarks beside the papers'); ``denoise-zoo import --from nafnet FILE`` makes the authors' released
weights a card; ``denoise-zoo list`` shows the cards. ``DENOISE_ZOO`` names the index
to write (a team's own zoo), else the shipped one."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from denoise.cli import add_version

DESCRIPTION = (
    "The model zoo: pack a finished training run into a card (add), make the authors' released weights a card "
    "(import), or list the cards (list). DENOISE_ZOO names the index to write (a team's own zoo)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="denoise-zoo", description=DESCRIPTION)
    add_version(parser)
    verbs = parser.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="pack a finished run into a card")
    add.add_argument("run_dir", help="the run's directory (logs/train/runs/<time>), with results.json and .hydra/")
    add.add_argument("--name", help="the card's name (default: the run's experiment=, else the directory's name)")
    add.add_argument("--data-dir", help="where set12/ bsd68/ (gray) or cbsd68/ kodak24/ mcmaster/ are (paths.data_dir)")
    verbs.add_parser("list", help="the cards of the zoo, as JSON")
    from denoise.zoo.authors import PAD_CHOICES, SOURCES

    imported = verbs.add_parser("import", help="the authors' released weights as a card (renamed, never unpickled)")
    imported.add_argument("file", help="the authors' weights file (.pth), a state dict of tensors")
    imported.add_argument("--from", dest="source", required=True, choices=sorted(SOURCES),
                          help="whose code the file comes from")  # fmt: skip
    imported.add_argument("--name", help="the card's name (default: <from>_<file name>)")
    imported.add_argument(
        "--pad-mode",
        choices=PAD_CHOICES,
        default="authors",
        help="pad as the authors' inference does (default) or as the suite does (reflect)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from denoise import zoo

    try:
        if args.verb == "list":
            print(json.dumps(zoo.entries(), indent=2, default=str))
            return 0
        from denoise.tasks.zoo_pack import import_authors, pack

        if args.verb == "import":
            card = import_authors(args.source, args.file, args.name, args.pad_mode)
        else:
            card = pack(args.run_dir, args.name, args.data_dir)
    except (ValueError, OSError) as err:
        print(f"denoise-zoo: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2, default=str))
    print(f"wrote the card into {zoo.index_path()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
