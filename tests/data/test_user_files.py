"""A user's own CSV and .npz files: the shipped examples load, and every kind
of bad file stops with one line that names the problem."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run

from pipeline.core.errors import PipelineError
from pipeline.data.raw import Raw, check
from pipeline.data.user_files import CsvSource, NpzSource, read_csv, read_npz


def csv_source(path: Path, **keys) -> CsvSource:
    return CsvSource(kind="csv", path=str(path), **({"label": "label"} | keys))


def npz_source(path: Path, **keys) -> NpzSource:
    return NpzSource(kind="npz", path=str(path), **keys)


def test_shipped_examples_load(monkeypatch):
    monkeypatch.chdir(ROOT)  # paths are relative to the repository root
    iris = (CsvSource(kind="csv", path="data/files/iris.csv", label="species")).load()
    assert iris.X.shape == (150, 4) and iris.X.dtype == np.float64
    assert np.bincount(iris.y.astype(int)).tolist() == [50, 50, 50]
    assert iris.X[0].tolist() == [5.1, 3.5, 1.4, 0.2]
    cancer = (NpzSource(kind="npz", path="data/files/breast_cancer.npz")).load()
    assert cancer.X.shape == (569, 30) and np.bincount(cancer.y.astype(int)).tolist() == [212, 357]
    assert cancer.X.max() > 4000  # raw units: the dataset's config standardizes them at the split


def test_csv_feature_columns_default_to_all_but_the_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label,b\n1,0,2\n3,1,4.5\n")
    X, y = read_csv(csv_source(path))
    assert X.tolist() == [[1, 2], [3, 4.5]] and y.tolist() == [0, 1]
    X, y = read_csv(csv_source(path, features=["b"]))
    assert X.tolist() == [[2], [4.5]]


@pytest.mark.parametrize("content, keys, message", [
    ("a,label\n1,0\nx,1\n", {}, r"line 3, column 'a': 'x', not a number"),
    ("a,label\n1,0\n,1\n", {}, r"line 3, column 'a': an empty cell"),
    ("a,label\n1,0\nnan,1\n", {}, r"line 3, column 'a': nan is not a finite number"),
    ("a,label\n1,0\n2,one\n", {}, r"line 3, column 'label': 'one', not a number"),
    ("a,label\n1,0\n2\n", {}, r"line 3: 1 fields, the header has 2"),
    ("a,b\n1,0\n", {}, r"has no column 'label' \(its columns: \['a', 'b'\]\)"),
    # a header-less file's first row is data, maybe thousands of cells: not echoed back
    ("0.5,1.5,0\n1,0,1\n", {}, r"has no header row \(its first row is numbers\): add one naming the columns, "
                              r"the label 'label' among them$"),
    (",".join(f"f{i}" for i in range(5000)) + "\n" + ",".join("0" * 5000) + "\n", {},
     r"has no column 'label' \(its columns: \['f0', 'f1', .*'f9', '\.\.\. 4990 more'\]\)$"),
    ("a,label\n1,0\n", {"features": ["c"]}, r"has no column 'c'"),
    ("a,label\n", {}, r"has a header but no data rows"),
    ("", {}, r"is empty"),
    ("label\n0\n1\n", {}, r"no feature columns besides the label"),
])
def test_bad_csv_files_name_the_problem(tmp_path, content, keys, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(PipelineError, match=message):
        read_csv(csv_source(path, **keys))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(PipelineError, match=r"data file .*nowhere.csv not found"):
        read_csv(csv_source(tmp_path / "nowhere.csv"))
    with pytest.raises(PipelineError, match=r"data file .*nowhere.npz not found"):
        read_npz(npz_source(tmp_path / "nowhere.npz"))


def test_single_class_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a,label\n1,1\n2,1\n3,1\n")
    with pytest.raises(PipelineError, match="single class"):
        check(Raw(*read_csv(csv_source(path))), "one")


def test_npz_reads_the_named_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.arange(6.0).reshape(3, 2), target=np.array([0, 1, 1]))
    X, y = read_npz(npz_source(path, features="features", label="target"))
    assert X.shape == (3, 2) and X.dtype == np.float64 and y.tolist() == [0, 1, 1]


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((3, 2))}, r"has no array 'y' \(it has \['X'\]\)"),
    ({"X": np.zeros(3), "y": np.zeros(3)}, r"X must be \(n, features\) and y \(n,\), got \(3,\) and \(3,\)"),
    ({"X": np.zeros((3, 2)), "y": np.zeros(4)}, r"got \(3, 2\) and \(4,\)"),
    ({"X": np.array([[1.0, np.nan], [0, 0]]), "y": np.zeros(2)}, r"X has NaN or infinite values \(first in row 0\)"),
    ({"X": np.array([["a", "b"]]), "y": np.zeros(1)}, r"X holds <U1 values, not numbers"),
])
def test_bad_npz_files_name_the_problem(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(PipelineError, match=message):
        read_npz(npz_source(path))


def test_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(PipelineError, match=r"is not a readable .npz file"):
        read_npz(npz_source(path))


def test_fetch_stage_reports_a_bad_csv_in_one_line(project):
    (project / "data/files/iris.csv").write_text("sepal_length,species\n5.1,0\nabc,1\n")
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace(
        "datasets:\n", "datasets:\n  iris:\n    source: {kind: csv, path: data/files/iris.csv, label: species}\n"
        "    split: {dev: 0.2, test: 0.2, seed: 0}\n", 1))
    result = run([sys.executable, "-m", "pipeline.stages.fetch", "iris"], project, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: data/files/iris.csv line 3, column 'sepal_length': 'abc', not a number"]
    assert not (project / "data/raw/iris.npz").exists()


@pytest.mark.parametrize("y, split_config, message", [
    # a class of one member: scikit-learn's stratified split raised a 53-line traceback
    ([0] * 20 + [1] * 20 + [2], {"dev": 0.2, "test": 0.2},
     "class 2 has 1 example(s) left when carving test: a stratified split needs at least 2 of each class; "
     "add examples or drop the class"),
    ([0] * 20 + [1] * 20 + [2, 2], {"dev": 0.2, "test": 2},
     "test (2 examples) and what is left (40) must each hold every one of the 3 classes: change split.test"),
])
def test_a_split_stratification_cannot_make_is_one_line_in_the_split_stage(project, y, split_config, message):
    rng = np.random.default_rng(0)
    np.savez(project / "data/files/odd.npz", X=rng.normal(size=(len(y), 2)), y=np.array(y))
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace(
        "datasets:\n", "datasets:\n  odd:\n    source: {kind: npz, path: data/files/odd.npz}\n"
        f"    split: {{dev: {split_config['dev']}, test: {split_config['test']}, seed: 0}}\n", 1))
    run([sys.executable, "-m", "pipeline.stages.fetch", "odd"], project)
    result = run([sys.executable, "-m", "pipeline.stages.split", "odd"], project, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {message}"]
    assert not (project / "data/split/odd").exists()


def test_standardize_uses_train_statistics_only():
    from pipeline.data.splits import SplitConfig, split

    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(100, 20, 400), rng.normal(0, 0.01, 400), np.full(400, 7.0)]  # one constant column
    y = (X[:, 0] > 100).astype(int)
    plain = split(Raw(X, y), SplitConfig(dev=0.2, test=0.2, seed=0))
    scaled = split(Raw(X, y), SplitConfig(dev=0.2, test=0.2, seed=0, standardize=True))
    train = plain.X["train"]
    np.testing.assert_allclose(scaled.X["train"].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled.X["train"][:, :2].std(axis=0), 1, rtol=1e-12)
    assert np.all(scaled.X["train"][:, 2] == 0)  # a constant feature stays finite: 0
    for part in ("dev", "test"):  # transformed with the train split's mean and std, not their own
        expected = (plain.X[part][:, :2] - train[:, :2].mean(axis=0)) / train[:, :2].std(axis=0)
        np.testing.assert_allclose(scaled.X[part][:, :2], expected, rtol=1e-12)
        assert abs(scaled.X[part][:, 0].mean()) > 1e-6  # so not exactly centred
        assert np.array_equal(scaled.y[part], plain.y[part])
