"""Stage validate: check the whole of params.yaml against the schema.

    python -m pipeline.stages.validate

Every other stage validates params.yaml when it runs, but a key that no
stage reads (a typo such as `seed` for `seeds`, added by `dvc exp run -S
'+seed=[1]'`) reruns no stage: this one depends on every param, so any
change to the file, a new key included, runs it, and a wrong value or an
unknown key stops `dvc repro` with one line naming it.
"""

from __future__ import annotations

import argparse

from pipeline.config import PARAMS_FILE, load_params
from pipeline.core.errors import cli


@cli
def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    load_params()
    print(f"validate: {PARAMS_FILE} matches the schema")


if __name__ == "__main__":
    main()
