import gzip
import io
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minimoe.data import census
from minimoe.data.census import (
    COLUMNS,
    NUMERIC_COLUMNS,
    CensusDataNotFoundError,
    CensusEncoder,
    EncodedFeatures,
    census_labels,
    feature_columns,
    find_data_home,
    load_census,
    load_census_files,
    make_census_data,
    read_census_file,
)

from .helpers import real_test_file

# ------------------------------------------------------------------------------ a handmade fixture

DEFAULTS = {name: "0" for name in NUMERIC_COLUMNS} | {
    name: "Not in universe" for name in COLUMNS if name not in NUMERIC_COLUMNS}
DEFAULTS |= {"instance_weight": "1500.5", "year": "95", "det_ind_code": "0", "country_self": "United-States",
             "education": "High school graduate", "marital_stat": "Divorced", "income_50k": "- 50000."}


def line(**fields) -> str:
    """One 42-field line in the file's format: comma + space between fields."""
    unknown = set(fields) - set(COLUMNS)
    assert not unknown, unknown
    return ", ".join(str(fields.get(name, DEFAULTS[name])) for name in COLUMNS)


TRAIN_LINES = [
    line(age=30, class_worker="Private", education="Bachelors degree(BA AB BS)", marital_stat="Never married",
         income_50k="50000+.", wage_per_hour=10, instance_weight=1000.5, det_ind_code=33),
    line(age=50, class_worker="?", education="High school graduate",
         marital_stat="Married-civilian spouse present", wage_per_hour=0, instance_weight=2000, det_ind_code=4,
         country_self="Mexico"),
    line(age=40, class_worker="Local government", education="Children", marital_stat="Divorced",
         wage_per_hour=20, instance_weight=3000, det_ind_code=33),
]
TEST_LINES = [
    line(age=35, class_worker="Never worked", country_self="?", capital_gains=7, det_ind_code=51,
         education="Doctorate degree(PhD EdD)", marital_stat="Never married", income_50k="50000+."),
    line(age=40, class_worker="Private", education="Some college but no degree", det_ind_code=4),
    line(age=61, class_worker="?", education="12th grade no diploma", marital_stat="Widowed", det_ind_code=33),
]


def write_text(path: Path, lines, trailing="\n") -> Path:
    path.write_text("\n".join(lines) + trailing)
    return path


def write_gzip(path: Path, lines) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture
def fixture_columns(tmp_path):
    train = read_census_file(write_text(tmp_path / "train.txt", TRAIN_LINES))
    test = read_census_file(write_gzip(tmp_path / "test.gz", TEST_LINES))
    return train, test


def test_parses_values_and_types(fixture_columns):
    train, test = fixture_columns
    assert tuple(train) == COLUMNS
    assert all(len(values) == 3 for values in train.values())
    np.testing.assert_array_equal(train["age"], [30.0, 50.0, 40.0])
    np.testing.assert_array_equal(train["instance_weight"], [1000.5, 2000.0, 3000.0])
    for name in NUMERIC_COLUMNS:
        assert train[name].dtype == np.float64, name
    assert train["class_worker"].tolist() == ["Private", "?", "Local government"]      # stripped, "?" kept
    assert train["det_ind_code"].tolist() == ["33", "4", "33"]                            # codes stay strings
    assert train["year"].tolist() == ["95"] * 3
    assert test["country_self"].tolist() == ["?", "United-States", "United-States"]
    assert test["income_50k"].tolist() == ["50000+.", "- 50000.", "- 50000."]


def test_plain_and_gzip_files_read_the_same(tmp_path):
    plain = read_census_file(write_text(tmp_path / "a", TEST_LINES, trailing=""))     # no final newline
    packed = read_census_file(str(write_gzip(tmp_path / "b.gz", TEST_LINES)))
    crlf = read_census_file(write_text(tmp_path / "c", [x + "\r" for x in TEST_LINES]))
    for other in (packed, crlf):
        for name in COLUMNS:
            np.testing.assert_array_equal(plain[name], other[name])


def test_encoder_ids_missing_unseen_and_standardisation(fixture_columns):
    train, test = fixture_columns
    encoder = CensusEncoder.fit(train, categorical=["class_worker", "country_self", "det_ind_code"],
                                numeric=["age", "capital_gains"])
    # class_worker training values, sorted: "Local government" -> 2, "Private" -> 3; "?" -> 1; unseen -> 0
    assert encoder.vocabularies["class_worker"] == ("Local government", "Private")
    assert encoder.cardinalities == (4, 4, 4)
    features = encoder.transform(test)
    assert features.categorical.dtype == np.int64 and features.numeric.dtype == np.float64
    assert features.categorical.shape == (3, 3) and features.numeric.shape == (3, 2)
    np.testing.assert_array_equal(features.categorical[:, 0], [0, 3, 1])        # unseen, Private, missing
    np.testing.assert_array_equal(features.categorical[:, 1], [1, 3, 3])        # "?" never seen in training: 1
    np.testing.assert_array_equal(features.categorical[:, 2], [0, 3, 2])        # "51" unseen; codes sort as str
    age_mean, age_std = 40.0, np.sqrt(200 / 3)                                  # training rows 30, 50, 40
    np.testing.assert_allclose(features.numeric[:, 0], (np.array([35, 40, 61]) - age_mean) / age_std)
    # capital_gains is log-scaled, log(1 + x), and constant (0) in training: mean 0, std 1
    np.testing.assert_allclose(features.numeric[:, 1], [np.log1p(7.0), 0.0, 0.0], rtol=1e-12)
    train_features = encoder.transform(train)
    np.testing.assert_allclose(train_features.numeric[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(train_features.numeric[:, 0].std(), 1)
    np.testing.assert_array_equal(train_features.categorical[:, 0], [3, 1, 2])


def test_encoder_rejects_bad_column_lists(fixture_columns):
    train, _ = fixture_columns
    with pytest.raises(ValueError, match="instance_weight.*survey weight"):
        CensusEncoder.fit(train, categorical=["race"], numeric=["age", "instance_weight"])
    with pytest.raises(ValueError, match="categorical lists 'nope'"):
        CensusEncoder.fit(train, categorical=["nope"])
    with pytest.raises(ValueError, match="each column once"):
        CensusEncoder.fit(train, categorical=["age"], numeric=["age"])
    encoder = CensusEncoder.fit(train, categorical=["race"], numeric=["age"])
    with pytest.raises(ValueError, match="lacks.*'age'"):
        encoder.transform({"race": train["race"]})


def test_labels_of_both_groups(fixture_columns):
    train, test = fixture_columns
    np.testing.assert_array_equal(census_labels(train, 1), [[1, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(census_labels(train, 2), [[1, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(census_labels(test, 1), [[1, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(census_labels(test, 2), [[1, 1], [1, 0], [0, 0]])   # some college counts
    assert census_labels(test, 1).dtype == np.float64
    bad = dict(test, income_50k=np.array(["yes", "no", "no"], dtype=object))
    with pytest.raises(ValueError, match="income_50k"):
        census_labels(bad, 1)
    with pytest.raises(ValueError, match="group must be one of"):
        census_labels(test, 3)
    with pytest.raises(TypeError, match="group"):
        census_labels(test, "1")


@pytest.mark.parametrize("group, removed, kept", [(1, {"income_50k", "marital_stat"}, "education"),
                                                  (2, {"education", "marital_stat"}, "income_50k")])
def test_label_columns_and_weight_are_not_features(group, removed, kept):
    categorical, numeric = feature_columns(group)
    names = set(categorical) | set(numeric)
    assert not names & (removed | {"instance_weight"})
    assert kept in categorical
    assert names == set(COLUMNS) - removed - {"instance_weight"}
    assert numeric == ("age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp",
                       "weeks_worked")


@pytest.mark.parametrize("group", [1, 2])
def test_make_census_data_on_fixture(fixture_columns, group):
    train, test = fixture_columns
    both = {name: np.concatenate([train[name], test[name]]) for name in COLUMNS}     # 6 rows
    data = make_census_data(None, both, group=group, seed=3, n_train=3, n_validation=2)
    assert data.test_file_only and data.task_names == census.TASK_GROUPS[group]
    assert [len(data.train[0]), len(data.validation[0]), len(data.test[0])] == [3, 2, 1]
    for features, labels in (data.train, data.validation, data.test):
        assert labels.shape == (len(features), 2)
        assert "instance_weight" not in features.numeric_names + features.categorical_names
        assert not set(census.GROUP_LABEL_COLUMNS[group]) & set(features.categorical_names)
    np.testing.assert_allclose(data.train[0].numeric.mean(axis=0), 0, atol=1e-12)   # fitted on train only
    with_file = make_census_data(train, test, group=group, seed=3, n_validation=1)
    assert not with_file.test_file_only
    assert [len(with_file.train[0]), len(with_file.validation[0]), len(with_file.test[0])] == [2, 1, 3]
    with pytest.raises(ValueError, match="n_train \\+ n_validation"):
        make_census_data(None, both, n_train=4, n_validation=2)


def test_encoded_features_index_like_an_array():
    features = EncodedFeatures(np.arange(10).reshape(5, 2), np.arange(15.0).reshape(5, 3), ("a", "b"),
                               ("x", "y", "z"))
    assert len(features) == 5
    assert len(features[1:4]) == 3 and features[1:4].categorical.tolist() == [[2, 3], [4, 5], [6, 7]]
    picked = features[np.array([4, 0])]
    assert picked.numeric.tolist() == [[12, 13, 14], [0, 1, 2]] and picked.categorical_names == ("a", "b")
    assert features[np.array([True, False, False, False, True])].categorical.shape == (2, 2)
    assert features[2].categorical.shape == (1, 2) and features[-1].numeric.shape == (1, 3)
    with pytest.raises(ValueError, match="same rows"):
        EncodedFeatures(np.zeros((5, 2), np.int64), np.zeros((4, 3)), ("a", "b"), ("x", "y", "z"))
    with pytest.raises(ValueError, match="one column per name"):
        EncodedFeatures(np.zeros((5, 2), np.int64), np.zeros((5, 3)), ("a",), ("x", "y", "z"))


# ----------------------------------------------------------------------------------------- errors

def test_truncated_or_corrupt_gzip_names_the_file(tmp_path):
    good = gzip.compress(("\n".join(TEST_LINES * 50) + "\n").encode())
    truncated = tmp_path / "census-income.test.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=f"{truncated}.*truncated or corrupt"):
        read_census_file(truncated)
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(good[:20] + bytes(200) + good[220:])
    with pytest.raises(ValueError, match="corrupt.gz"):
        read_census_file(corrupt)
    not_gzip = tmp_path / "plain-text.gz"
    not_gzip.write_text("\n".join(TEST_LINES))
    with pytest.raises(ValueError, match="plain-text.gz"):
        read_census_file(not_gzip)


def test_wrong_field_count_names_file_and_line(tmp_path):
    short = TEST_LINES[1].rsplit(", ", 1)[0]                       # 41 fields
    path = write_text(tmp_path / "broken.txt", [TEST_LINES[0], short, TEST_LINES[2]])
    with pytest.raises(ValueError, match=r"broken\.txt, line 2: expected 42 .* found 41"):
        read_census_file(path)
    path = write_text(tmp_path / "blank.txt", [TEST_LINES[0], "", TEST_LINES[2]])   # a blank line inside
    with pytest.raises(ValueError, match="line 2: .* found 1"):
        read_census_file(path)
    with pytest.raises(ValueError, match="no rows"):
        read_census_file(write_text(tmp_path / "empty.txt", [], trailing="\n"))


def test_non_numeric_value_names_file_line_and_column(tmp_path):
    lines = TEST_LINES + [line(age="?")]
    with pytest.raises(ValueError, match=r"bad\.txt, line 4: column 'age' must be a finite number, got '\?'"):
        read_census_file(write_text(tmp_path / "bad.txt", lines))
    lines = TEST_LINES[:1] + [line(capital_gains="nan")] + TEST_LINES[1:]
    with pytest.raises(ValueError, match="line 2: column 'capital_gains'"):
        read_census_file(write_text(tmp_path / "nan.txt", lines))


def test_find_data_home(tmp_path, monkeypatch):
    assert find_data_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("MINIMOE_DATA", str(tmp_path / "env"))
    assert find_data_home() == tmp_path / "env"
    assert find_data_home(str(tmp_path / "arg")) == tmp_path / "arg"               # the argument wins
    monkeypatch.delenv("MINIMOE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_data_home() == tmp_path / ".minimoe" / "data"
    assert not (tmp_path / ".minimoe").exists()                                    # created only to download
    with pytest.raises(TypeError, match="data_home"):
        find_data_home(3)


def test_offline_download_says_which_files_to_put_where(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(census.urllib.request, "urlopen", offline)
    home = tmp_path / "nowhere"
    with pytest.raises(CensusDataNotFoundError) as caught:
        load_census_files(home)
    message = str(caught.value)
    assert isinstance(caught.value, OSError)
    for part in (str(home), "census-income.test.gz", "census-income.data.gz", census.UCI_PAGE, "no network"):
        assert part in message, part
    with pytest.raises(CensusDataNotFoundError, match="download=False"):
        load_census(data_home=home, download=False)


def fake_uci_archive(test_lines) -> bytes:
    """A zip holding census.tar.gz holding census/census-income.test, as the UCI archive is laid out."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as tar:
        for name, text in (("census/census-income.test", "\n".join(test_lines) + "\n"),
                           ("census/census-income.names", "notes")):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    zip_bytes = io.BytesIO()
    with zipfile.ZipFile(zip_bytes, "w") as archive:
        archive.writestr("census.tar.gz", tar_bytes.getvalue())
    return zip_bytes.getvalue()


def test_download_unpacks_the_archive(tmp_path, monkeypatch):
    payload = fake_uci_archive(TEST_LINES * 2)
    monkeypatch.setattr(census.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    home = tmp_path / "fresh"
    train, test = load_census_files(home)
    assert train is None and len(test["age"]) == 6
    assert sorted(p.name for p in home.iterdir()) == ["census-income.test"]


def test_only_the_test_file_present(tmp_path, monkeypatch):
    monkeypatch.setattr(census.urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    write_gzip(tmp_path / "census-income.test.gz", TEST_LINES * 3)
    train, test = load_census_files(tmp_path)
    assert train is None and len(test["age"]) == 9
    data = load_census(group=2, data_home=tmp_path, seed=0, n_train=5, n_validation=2)
    assert data.test_file_only and [len(s[0]) for s in (data.train, data.validation, data.test)] == [5, 2, 2]
    write_text(tmp_path / "census-income.data", TRAIN_LINES * 2)
    data = load_census(group=1, data_home=tmp_path, n_validation=2)
    assert not data.test_file_only and [len(s[0]) for s in (data.train, data.validation, data.test)] == [4, 2, 9]


# -------------------------------------------------------------------------------------- the real file

@pytest.fixture(scope="module")
def real():
    path = real_test_file()
    if path is None:
        pytest.skip("census-income.test.gz not found in ../shared/data or $MINIMOE_DATA")
    return read_census_file(path)


def test_real_file_counts(real):
    assert tuple(real) == COLUMNS
    assert all(len(values) == 99_762 for values in real.values())
    assert (real["income_50k"] == "50000+.").sum() == 6_186
    assert (real["income_50k"] == "- 50000.").sum() == 93_576
    assert (real["marital_stat"] == "Never married").sum() == 43_143
    assert set(real["education"].tolist()) == set(census.EDUCATION_VALUES)
    assert np.isin(real["education"], census.COLLEGE_EDUCATION).sum() == 33_410
    assert census_labels(real, 1).sum(axis=0).tolist() == [6_186, 43_143]


@pytest.mark.parametrize("group", [1, 2])
def test_real_file_splits(real, group):
    data = make_census_data(None, real, group=group, seed=0)
    sizes = [len(data.train[0]), len(data.validation[0]), len(data.test[0])]
    assert sizes == [60_000, 20_000, 19_762]
    features, labels = data.train
    assert features.categorical.shape == (60_000, 32) and features.numeric.shape == (60_000, 7)
    assert labels.shape == (60_000, 2) and labels.dtype == np.float64
    assert len(data.encoder.cardinalities) == 32
    for features, _ in (data.train, data.validation, data.test):
        assert (features.categorical >= 0).all() and (features.categorical < data.encoder.cardinalities).all()
        assert np.isfinite(features.numeric).all()
    np.testing.assert_allclose(data.train[0].numeric.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(data.train[0].numeric.std(axis=0), 1)
    positives = sum(split[1].sum(axis=0) for split in (data.train, data.validation, data.test))
    assert positives.tolist() == census_labels(real, group).sum(axis=0).tolist()     # a partition of the file


def test_real_file_split_is_seeded(real):
    a, b = (make_census_data(None, real, group=1, seed=7) for _ in range(2))
    c = make_census_data(None, real, group=1, seed=8)
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(a, split)[0].categorical, getattr(b, split)[0].categorical)
        np.testing.assert_array_equal(getattr(a, split)[0].numeric, getattr(b, split)[0].numeric)
        np.testing.assert_array_equal(getattr(a, split)[1], getattr(b, split)[1])
    assert not np.array_equal(a.validation[0].numeric, c.validation[0].numeric)
