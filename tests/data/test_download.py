"""The download path against a real HTTP server on the loopback interface:
checksum verification, mirror fallback, atomic writes, the .mat reader, and
the fetch stage's one-line errors."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import LOOPBACK, ROOT, serve_directory
from scipy.io import savemat

from pipeline.core.errors import PipelineError
from pipeline.data.download import download
from pipeline.data.matfile import MatDownloadSource


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def football_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(211, 2)),
        "y": rng.integers(0, 2, size=(211, 1)),
        "Xval": rng.normal(size=(200, 2)),
        "yval": rng.integers(0, 2, size=(200, 1)),
    }


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch):
    # A proxy configured in the environment must not intercept loopback requests.
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, f"{LOOPBACK},localhost")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real HTTP server serving a directory; yields (base_url, directory)."""
    root = tmp_path_factory.mktemp("served")
    arrays = football_arrays()
    savemat(root / "data.mat", arrays)
    savemat(root / "no_xval.mat", {k: v for k, v in arrays.items() if k != "Xval"})
    (root / "other.bin").write_bytes(b"these are not the bytes you are looking for\n")
    with serve_directory(root) as base:
        yield base, root


@pytest.fixture
def dead_url():
    """A loopback URL on a port that is bound but not listening: connection refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    try:
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}/data.mat"
    finally:
        sock.close()


# --- pipeline.download.download -------------------------------------------


def test_good_checksum_writes_identical_bytes(server, tmp_path):
    base, root = server
    target = tmp_path / "out" / "data.mat"
    assert download([f"{base}/data.mat"], sha256_of(root / "data.mat"), target) == f"{base}/data.mat"
    assert target.read_bytes() == (root / "data.mat").read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.mat"]  # no temporary left


def test_materialize_mat_download_returns_shipped_train_and_test(server):
    base, root = server
    source = MatDownloadSource(kind="mat_download", urls=[f"{base}/data.mat"], sha256=sha256_of(root / "data.mat"))
    raw = source.load()
    expected = football_arrays()
    assert raw.X.shape == (211, 2)
    assert raw.y.shape == (211,)
    assert raw.X_test.shape == (200, 2)
    assert raw.y_test.shape == (200,)
    np.testing.assert_array_equal(raw.X, expected["X"])
    np.testing.assert_array_equal(raw.y, expected["y"].ravel())
    np.testing.assert_array_equal(raw.X_test, expected["Xval"])
    np.testing.assert_array_equal(raw.y_test, expected["yval"].ravel())


def test_bad_checksum_is_reported_and_discarded(server, tmp_path):
    base, root = server
    actual = sha256_of(root / "data.mat")
    wrong = "0" * 64
    target = tmp_path / "data.mat"
    url = f"{base}/data.mat"
    with pytest.raises(PipelineError) as caught:
        download([url], wrong, target)
    message = str(caught.value)
    assert "checksum mismatch" in message
    assert url in message
    assert wrong in message and actual in message
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed too


def test_checksum_mismatch_is_not_routed_around(server, tmp_path):
    """A mirror serving wrong bytes stops the download even if a later mirror is good."""
    base, root = server
    target = tmp_path / "data.mat"
    with pytest.raises(PipelineError, match="checksum mismatch for .*/other.bin"):
        download([f"{base}/other.bin", f"{base}/data.mat"], sha256_of(root / "data.mat"), target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("first_down", ["connection_refused", "not_found"])
def test_falls_back_to_the_next_mirror(server, dead_url, tmp_path, first_down):
    base, root = server
    first = dead_url if first_down == "connection_refused" else f"{base}/missing/data.mat"
    target = tmp_path / "data.mat"
    assert download([first, f"{base}/data.mat"], sha256_of(root / "data.mat"), target) == f"{base}/data.mat"
    assert target.read_bytes() == (root / "data.mat").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.mat"]


def test_all_mirrors_down(server, dead_url, tmp_path):
    base, root = server
    urls = [dead_url, f"{base}/missing/data.mat"]
    target = tmp_path / "data.mat"
    with pytest.raises(PipelineError) as caught:
        download(urls, sha256_of(root / "data.mat"), target, timeout=5)
    message = str(caught.value)
    assert message.startswith("download failed, no mirror answered: ")
    for url in urls:
        assert url in message
    assert "refused" in message.lower()  # the reason of the dead port
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_mat_lacking_a_key_names_it(server):
    base, root = server
    source = MatDownloadSource(
        kind="mat_download", urls=[f"{base}/no_xval.mat"], sha256=sha256_of(root / "no_xval.mat")
    )
    with pytest.raises(PipelineError) as caught:
        source.load()
    message = str(caught.value)
    assert "lacks the keys ['Xval']" in message
    assert "'X'" in message and "'yval'" in message  # what the file has instead


def test_a_downloaded_file_that_is_not_mat_names_its_url(server):
    """Its checksum matches (the mirror serves what the config expects), but
    it is no .mat file: the error names where it came from, not the
    temporary file it was read from, which is gone by then."""
    base, root = server
    url = f"{base}/other.bin"
    source = MatDownloadSource(kind="mat_download", urls=[url], sha256=sha256_of(root / "other.bin"))
    with pytest.raises(PipelineError) as caught:
        source.load()
    assert str(caught.value) == f"{url} is not a readable .mat file: index out of range"


class TruncatingHandler(BaseHTTPRequestHandler):
    """Announces the whole body, sends a twentieth of it, and hangs up."""

    protocol_version = "HTTP/1.0"
    body = bytes(range(256)) * 400

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 20])
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def test_a_transfer_cut_short_counts_as_a_mirror_that_is_down(server, tmp_path):
    base, root = server
    cutter = ThreadingHTTPServer((LOOPBACK, 0), TruncatingHandler)
    thread = threading.Thread(target=cutter.serve_forever, daemon=True)
    thread.start()
    try:
        target = tmp_path / "data.mat"
        first = f"http://{LOOPBACK}:{cutter.server_address[1]}/data.mat"
        download([first, f"{base}/data.mat"], sha256_of(root / "data.mat"), target, timeout=5)
        assert target.read_bytes() == (root / "data.mat").read_bytes()
    finally:
        cutter.shutdown()
        cutter.server_close()
        thread.join(timeout=5)


# --- the fetch stage as a subprocess --------------------------------------


def football_params(urls: list[str], sha256: str) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    football = yaml.safe_load((ROOT / "conf/dataset/football.yaml").read_text())
    football["source"]["urls"] = urls
    football["source"]["sha256"] = sha256
    params["datasets"]["football"] = football
    return params


def run_fetch(cwd: Path, params: dict) -> subprocess.CompletedProcess:
    (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "no_proxy": f"{LOOPBACK},localhost", "NO_PROXY": f"{LOOPBACK},localhost"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.stages.fetch", "football"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_fetch_stage_writes_raw_npz(server, dead_url, tmp_path):
    base, root = server
    result = run_fetch(tmp_path, football_params([dead_url, f"{base}/data.mat"], sha256_of(root / "data.mat")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fetch football: 211 examples + 200 shipped test points"
    raw = tmp_path / "data/raw/football.npz"
    expected = football_arrays()
    with np.load(raw) as content:
        assert sorted(content) == ["X", "X_test", "y", "y_test"]
        np.testing.assert_array_equal(content["X"], expected["X"])
        np.testing.assert_array_equal(content["y"], expected["y"].ravel())
        np.testing.assert_array_equal(content["X_test"], expected["Xval"])
        np.testing.assert_array_equal(content["y_test"], expected["yval"].ravel())
    assert sorted(p.name for p in raw.parent.iterdir()) == ["football.npz"]


def test_fetch_stage_wrong_checksum_is_one_line_error(server, tmp_path):
    base, root = server
    wrong = "f" * 64
    result = run_fetch(tmp_path, football_params([f"{base}/data.mat"], wrong))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: checksum mismatch for ")
    assert wrong in lines[0] and sha256_of(root / "data.mat") in lines[0]
    assert not (tmp_path / "data/raw/football.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing half-written


# --- MNIST-style IDX files -------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: zero bytes, type 0x08, rank, big-endian dimensions, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def idx_server(tmp_path_factory):
    """Small gzipped IDX files (4x5 images) behind a real HTTP server; yields the
    base URL, the source config's files section and the arrays."""
    import gzip

    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(30, 4, 5)), "train_labels": np.arange(30) % 3,
        "test_images": rng.integers(0, 256, size=(12, 4, 5)), "test_labels": np.arange(12) % 3,
    }
    files = {}
    for part, array in arrays.items():
        name = f"{part.replace('_', '-')}-idx.gz"
        (root / name).write_bytes(gzip.compress(idx_bytes(array)))
        files[part] = {"name": name, "md5": hashlib.md5((root / name).read_bytes()).hexdigest()}
    (root / "broken").mkdir()
    # a header for 3 x 4 x 5 bytes followed by only 10 of them: a truncated export
    truncated = idx_bytes(np.zeros((3, 4, 5)))[:-50]
    (root / "broken/train-images-idx.gz").write_bytes(gzip.compress(truncated))
    with serve_directory(root) as base:
        yield base + "/", files, arrays, root


def idx_source(mirrors: list[str], files: dict):
    from pipeline.data.images import IdxDownloadSource

    return IdxDownloadSource(kind="idx_download", mirrors=mirrors, files=files, timeout_seconds=5)


def test_idx_download_parses_images_and_keeps_the_test_set(idx_server, dead_url):
    base, files, arrays, _ = idx_server
    raw = (idx_source([dead_url + "/", base], files)).load()
    assert raw.image_shape == (4, 5)
    assert raw.X.shape == (30, 20) and raw.X.dtype == np.float32 and raw.X_test.shape == (12, 20)
    np.testing.assert_array_equal(raw.X, (arrays["train_images"].reshape(30, 20) / 255).astype(np.float32))
    np.testing.assert_array_equal(raw.y, arrays["train_labels"])
    np.testing.assert_array_equal(raw.y_test, arrays["test_labels"])
    assert raw.y.dtype == np.int64


def test_idx_download_with_a_wrong_md5_is_reported_and_discarded(idx_server, tmp_path):
    base, files, _, _ = idx_server
    wrong = {**files, "test_labels": {"name": files["test_labels"]["name"], "md5": "0" * 32}}
    with pytest.raises(PipelineError, match=r"checksum mismatch for .*test-labels-idx.gz: expected md5 0{32}"):
        (idx_source([base], wrong)).load()


def test_a_corrupt_idx_file_is_one_clear_error(idx_server):
    base, files, _, root = idx_server
    broken = hashlib.md5((root / "broken/train-images-idx.gz").read_bytes()).hexdigest()
    bad = {**files, "train_images": {"name": "train-images-idx.gz", "md5": broken}}
    with pytest.raises(PipelineError, match=r"train-images-idx.gz: the header promises shape \(3, 4, 5\) \(60 bytes "
                                             r"of data\), the file holds 10"):
        (idx_source([base + "broken/"], bad)).load()


def test_read_idx_refuses_a_file_that_is_not_idx(tmp_path):
    from pipeline.data.images import read_idx

    path = tmp_path / "x.idx"
    path.write_bytes(b"PK\x03\x04 something else")
    with pytest.raises(PipelineError, match="x.idx is not an IDX file: bad magic number 504b0304"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(PipelineError, match="x.idx: the header promises 3 dimensions, the file ends before them"):
        read_idx(path)
    path.write_bytes(idx_bytes(np.arange(6).reshape(2, 3)))  # uncompressed works too
    assert read_idx(path).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_fetch_stage_writes_mnist_style_raw_data(idx_server, tmp_path):
    base, files, _, _ = idx_server
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    mnist = yaml.safe_load((ROOT / "conf/dataset/mnist.yaml").read_text())
    mnist["source"] |= {"mirrors": [base], "files": files}
    params["datasets"]["mnist"] = mnist
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "no_proxy": f"{LOOPBACK},localhost", "NO_PROXY": f"{LOOPBACK},localhost"}
    result = subprocess.run([sys.executable, "-m", "pipeline.stages.fetch", "mnist"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fetch mnist: 30 examples of 4x5 pixels + 12 shipped test points\n"
    with np.load(tmp_path / "data/raw/mnist.npz") as content:
        assert sorted(content) == ["X", "X_test", "image_shape", "y", "y_test"]
        assert content["image_shape"].tolist() == [4, 5]
