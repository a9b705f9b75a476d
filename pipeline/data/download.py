"""HTTP download from a list of mirrors, verified against a checksum: sha256,
or md5 where a data set publishes only that (MNIST)."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError

CHUNK = 1 << 16


def download(urls: list[str], checksum: str, target: Path, timeout: float = 30.0, algorithm: str = "sha256") -> str:
    """Fetch the first mirror that answers into target, atomically; return
    that mirror's URL, which is what errors about the file must name (target
    is often a temporary path, gone by the time the user reads them).

    A mirror that is down is skipped; a file whose checksum differs is
    discarded and reported, since a mirror serving the wrong bytes is a
    problem the user must know about, not route around.
    """
    failures = []
    for url in urls:
        try:
            with atomic_path(target) as tmp:
                digest = _fetch(url, tmp, timeout, algorithm)
                if digest != checksum:
                    raise PipelineError(
                        f"checksum mismatch for {url}: expected {algorithm} {checksum}, got {digest}; "
                        "the download was discarded"
                    )
            return url
        except (urllib.error.URLError, OSError, ValueError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
    raise PipelineError("download failed, no mirror answered: " + "; ".join(failures))


def _fetch(url: str, path: Path, timeout: float, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
        announced = response.headers.get("Content-Length")
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
    # A connection dropped mid-transfer ends the read loop quietly: that is a
    # mirror failing, not a mirror serving wrong bytes.
    if announced is not None and received != int(announced):
        raise OSError(f"transfer cut short after {received} of {announced} bytes")
    return digest.hexdigest()
