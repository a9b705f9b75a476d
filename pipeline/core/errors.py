"""One error type for every failure a user can cause or fix, and the CLI wrapper
that turns it into one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class PipelineError(Exception):
    """A failure with a cause the user can act on: bad config, bad data,
    divergence, unreachable tracking server. Its message is the whole report."""


def cli(main: Callable[..., None]) -> Callable[..., None]:
    """Run a stage's main(): a PipelineError becomes 'error: <message>' and exit 1."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except PipelineError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
