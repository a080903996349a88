"""Generate the JSON Schemas of the spec files and point spec files at them.

    python tools/spec_schemas.py                 # (re)write cdisc/schemas/specs/*.schema.json
    python tools/spec_schemas.py --check         # exit 1 when a shipped schema is stale
    python tools/spec_schemas.py --modelines specs tests/studies/edc2/specs studies/cdiscpilot01/specs

``--modelines`` makes the first line of every spec file under the given spec folders
``# yaml-language-server: $schema=<relative path to its schema>`` and changes nothing else
(an existing such first line is replaced). The same as ``cdisc spec schemas``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdisc.excel.schemas import SCHEMA_DIR, add_modeline, kind_of, kinds, schema_path, schema_text, write_schemas  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare the shipped schemas with fresh ones")
    ap.add_argument("--modelines", nargs="*", metavar="SPECS_DIR", help="spec folders whose files get the schema line")
    args = ap.parse_args(argv)
    if args.check:
        stale = [k for k in kinds() if not schema_path(k).is_file() or schema_path(k).read_text(encoding="utf-8") != schema_text(k)]
        for k in stale:
            print(f"stale: {schema_path(k)}")
        return 1 if stale else 0
    if args.modelines is None:
        for p in write_schemas():
            print(f"wrote {p.relative_to(SCHEMA_DIR.parent.parent.parent)}")
        return 0
    changed = 0
    for folder in map(Path, args.modelines):
        for p in sorted(folder.rglob("*.yaml")):
            if kind_of(p.relative_to(folder).as_posix()) and add_modeline(p, folder):
                changed += 1
                print(f"schema line: {p}")
    print(f"{changed} files changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
