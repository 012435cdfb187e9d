"""The UCI Census-Income (KDD) data set as two-task problems, as in the MMoE paper (section 6).

The data (UCI id 117; 1994 and 1995 Current Population Surveys; CC BY 4.0) is two headerless files,
``census-income.data`` (199,523 rows, the training split) and ``census-income.test`` (99,762 rows),
each optionally gzipped: 42 comma-separated fields per line, a space after every comma, ``?`` for a
missing value. This module reads them, derives the paper's labels, removes the label columns from
the features and encodes the rest with statistics of the training rows only:

    read_census_file(path)                      -> {column name: (N,) array}
    load_census_files(data_home, download)      -> (train columns or None, test columns)
    make_census_data(train, test, group, seed)  -> CensusData (encoded splits, labels, the encoder)
    load_census(group, data_home, seed)         =  load_census_files + make_census_data

Task groups (paper, section 6.1): group 1 predicts income > $50K and "never married"; group 2
predicts "education at least college" and "never married". See ``census_labels`` for the exact
definitions and ``COLLEGE_EDUCATION`` for the education values that count as college.

``instance_weight`` is a survey weight (how many people a row stands for), never a feature.
"""

from __future__ import annotations

import gzip
import io
import numbers
import os
import tarfile
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checks import check_positive_int, make_rng
from ..inputs import FeatureBatch

COLUMNS = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour", "hs_college",
    "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex", "union_member",
    "unemp_reason", "full_or_part_emp", "capital_gains", "capital_losses", "stock_dividends",
    "tax_filer_stat", "region_prev_res", "state_prev_res", "det_hh_fam_stat", "det_hh_summ",
    "instance_weight", "mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt",
    "num_emp", "fam_under_18", "country_father", "country_mother", "country_self", "citizenship",
    "own_or_self", "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
)
NUMERIC_COLUMNS = ("age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp",
                   "weeks_worked", "instance_weight")
# Everything else, the integer codes det_ind_code, det_occ_code, own_or_self, vet_benefits and year included.
CATEGORICAL_COLUMNS = tuple(c for c in COLUMNS if c not in NUMERIC_COLUMNS)
WEIGHT_COLUMN = "instance_weight"
LABEL_COLUMNS = ("income_50k", "marital_stat", "education")      # the raw columns labels come from
MISSING = "?"

TASK_GROUPS = {1: ("income_50k", "never_married"), 2: ("college", "never_married")}
GROUP_LABEL_COLUMNS = {1: ("income_50k", "marital_stat"), 2: ("education", "marital_stat")}

INCOME_VALUES = ("- 50000.", "50000+.")
EDUCATION_VALUES = (
    "Children", "Less than 1st grade", "1st 2nd 3rd or 4th grade", "5th or 6th grade", "7th and 8th grade",
    "9th grade", "10th grade", "11th grade", "12th grade no diploma", "High school graduate",
    "Some college but no degree", "Associates degree-occup /vocational", "Associates degree-academic program",
    "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)",
)
COLLEGE_EDUCATION = EDUCATION_VALUES[EDUCATION_VALUES.index("Some college but no degree"):]

DATA_FILES = ("census-income.data", "census-income.test")
UCI_PAGE = "https://archive.ics.uci.edu/dataset/117/census+income+kdd"
UCI_ARCHIVE = "https://archive.ics.uci.edu/static/public/117/census+income+kdd.zip"

_CHUNK_LINES = 20_000


# --------------------------------------------------------------------------------------------- reading

def _read_text(path: Path) -> str:
    """The whole file as text, gunzipped when it is a gzip file (by its magic bytes or its .gz name)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b" or path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise ValueError(f"{path} is not a complete gzip file ({type(err).__name__}: {err}); "
                             f"it is truncated or corrupt, fetch it again") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a text file: undecodable byte at offset {err.start}") from None


def _to_float(path: Path, name: str, values: list[str], first_line: int) -> np.ndarray:
    """Strings -> (n,) float64; on a bad or non-finite value, an error naming file, line and column."""
    try:
        result = np.array(values, dtype=np.float64)                     # (n,)
        bad = np.flatnonzero(~np.isfinite(result))
    except ValueError:
        bad = [next((i for i, v in enumerate(values) if not _parses_as_float(v)), 0)]
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}, line {first_line + i}: column {name!r} must be a finite number, "
                         f"got {values[i]!r}")
    return result


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_census_file(path) -> dict[str, np.ndarray]:
    """Read one Census-Income file (gzipped or not) into {column name: (N,) array}, keys in ``COLUMNS`` order.

    Numeric columns (``NUMERIC_COLUMNS``) are float64; the others are object arrays of stripped str,
    with ``"?"`` kept as the missing marker. Equal strings of a column are one shared object, so a
    column costs 8 bytes a row. A trailing empty line is skipped; any other line must hold 42 fields.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    lines = _read_text(path).split("\n")
    while lines and not lines[-1].strip():                              # trailing empty line(s)
        lines.pop()
    if not lines:
        raise ValueError(f"{path} holds no rows")
    n_fields = len(COLUMNS)
    counts = np.fromiter((line.count(",") + 1 for line in lines), dtype=np.int64, count=len(lines))
    wrong = np.flatnonzero(counts != n_fields)
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(f"{path}, line {i + 1}: expected {n_fields} comma-separated fields, found {counts[i]}"
                         + (f" ({wrong.size} such lines)" if wrong.size > 1 else ""))

    numeric = set(NUMERIC_COLUMNS)
    parts: dict[str, list] = {name: [] for name in COLUMNS}
    shared: dict[str, dict[str, str]] = {name: {} for name in CATEGORICAL_COLUMNS}
    for start in range(0, len(lines), _CHUNK_LINES):                   # bounded memory per chunk
        fields = ",".join(lines[start:start + _CHUNK_LINES]).split(",")   # (rows * 42,) row-major
        for j, name in enumerate(COLUMNS):
            values = [v.strip() for v in fields[j::n_fields]]          # (rows,)
            if name in numeric:
                parts[name].append(_to_float(path, name, values, start + 1))
            else:
                seen = shared[name]
                parts[name].append(np.array([seen.setdefault(v, v) for v in values], dtype=object))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


# ----------------------------------------------------------------------------------- finding the files

class CensusDataNotFoundError(FileNotFoundError):
    """The Census-Income files are not in the data home and could not be downloaded."""


def find_data_home(data_home=None) -> Path:
    """Where the data lives: ``data_home``, else $MINIMOE_DATA, else ~/.minimoe/data.

    The folder is not created here; a download creates it when needed.
    """
    if data_home is None:
        data_home = os.environ.get("MINIMOE_DATA") or Path("~") / ".minimoe" / "data"
    if not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(f"data_home must be a str, a path or None, got {type(data_home).__name__}")
    return Path(data_home).expanduser()


def _find_file(home: Path, name: str) -> Path | None:
    """``name.gz`` (its CRC catches truncation) or else ``name`` in ``home``; None when neither exists."""
    for candidate in (home / f"{name}.gz", home / name):
        if candidate.is_file():
            return candidate
    return None


def _not_found_message(home: Path, reason: str) -> str:
    return (f"Census-Income (KDD) data not found: {reason}. Put census-income.test.gz (required, 99,762 rows) "
            f"and, for the paper's protocol, census-income.data.gz (the 199,523-row training split) into the "
            f"folder {home} (gzipped or unpacked as census-income.test / census-income.data), or point "
            f"data_home= or the MINIMOE_DATA environment variable to the folder that holds them. Both files are "
            f"inside census.tar.gz in the UCI archive {UCI_ARCHIVE} (page: {UCI_PAGE}).")


def download_census(home: Path, timeout: float = 60.0) -> None:
    """Fetch the UCI archive and write census-income.data and .test into ``home``.

    The archive is a zip holding census.tar.gz; only the two data files are written (by base name,
    so no member can write outside ``home``), each through a temporary file then renamed.
    """
    home.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(UCI_ARCHIVE, timeout=timeout) as response:
        outer = zipfile.ZipFile(io.BytesIO(response.read()))
    members = [(Path(m).name, outer.read(m)) for m in outer.namelist()]
    for name, blob in list(members):
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
                members += [(Path(m.name).name, tar.extractfile(m).read()) for m in tar.getmembers()
                            if m.isfile() and Path(m.name).name in DATA_FILES]
    for name, blob in members:
        if name in DATA_FILES or name.removesuffix(".gz") in DATA_FILES:
            partial = home / f"{name}.part"
            partial.write_bytes(blob)
            partial.replace(home / name)


def load_census_files(data_home=None, download: bool = True):
    """(train columns or None, test columns) read from the data home (see ``find_data_home``).

    Each file is found as ``census-income.{data,test}.gz`` or unpacked. When neither file is there and
    ``download`` is true, the UCI archive is fetched once. The test file is required; without it a
    ``CensusDataNotFoundError`` (a FileNotFoundError) says which files to put where.
    """
    home = find_data_home(data_home)
    train_path, test_path = (_find_file(home, name) for name in DATA_FILES)
    if train_path is None and test_path is None:
        if not download:
            raise CensusDataNotFoundError(_not_found_message(home, f"neither file is in {home} and download=False"))
        try:
            download_census(home)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as err:
            raise CensusDataNotFoundError(_not_found_message(
                home, f"neither file is in {home} and the download of {UCI_ARCHIVE} failed ({err})")) from err
        train_path, test_path = (_find_file(home, name) for name in DATA_FILES)
    if test_path is None:
        raise CensusDataNotFoundError(_not_found_message(home, f"census-income.test(.gz) is not in {home}"))
    train = read_census_file(train_path) if train_path is not None else None
    return train, read_census_file(test_path)


# ------------------------------------------------------------------------------------ labels, features

def _check_group(group) -> int:
    if isinstance(group, (bool, np.bool_)) or not isinstance(group, numbers.Integral):
        raise TypeError(f"group must be 1 or 2 (an int), got {group!r}")
    if int(group) not in TASK_GROUPS:
        raise ValueError(f"group must be one of {sorted(TASK_GROUPS)}, got {group}")
    return int(group)


def _check_values(columns: Mapping, name: str, allowed: Sequence[str]) -> np.ndarray:
    values = columns[name]
    unknown = sorted(set(values.tolist()) - set(allowed))
    if unknown:
        raise ValueError(f"columns[{name!r}] holds values that are not in the Census-Income data: "
                         f"{unknown[:5]!r}; expected one of {tuple(allowed)!r}")
    return values


def census_labels(columns: Mapping[str, np.ndarray], group: int = 1) -> np.ndarray:
    """Labels (N, 2) float64 of 0/1, columns in the order of ``TASK_GROUPS[group]``.

    - income_50k: 1 when the income field is ``"50000+."`` (0 for ``"- 50000."``);
    - never_married: 1 when marital_stat is ``"Never married"``;
    - college: 1 when education is at least some college, i.e. one of ``COLLEGE_EDUCATION``:
      "Some college but no degree", "Associates degree-occup /vocational", "Associates
      degree-academic program", "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW
      MBA)", "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)". High school
      graduates and below, and "Children", are 0. On the test file 33,410 of 99,762 rows (33.5%) are 1.
    """
    group = _check_group(group)
    derived = {
        "income_50k": lambda: _check_values(columns, "income_50k", INCOME_VALUES) == "50000+.",
        "never_married": lambda: columns["marital_stat"] == "Never married",
        "college": lambda: np.isin(_check_values(columns, "education", EDUCATION_VALUES), COLLEGE_EDUCATION),
    }
    return np.stack([derived[task]().astype(np.float64) for task in TASK_GROUPS[group]], axis=1)   # (N, 2)


def feature_columns(group: int = 1) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categorical, numeric) feature names of a group: every column but its label columns and the weight."""
    dropped = set(GROUP_LABEL_COLUMNS[_check_group(group)]) | {WEIGHT_COLUMN}
    return (tuple(c for c in CATEGORICAL_COLUMNS if c not in dropped),
            tuple(c for c in NUMERIC_COLUMNS if c not in dropped))


# ------------------------------------------------------------------------------------------- encoding

# Zero for most people and up to 99,999 for a few: standardised as they are, a handful of rows sit
# hundreds of standard deviations out. log(1 + x) keeps the order and tames the tail. (Measured on
# the test file, group 1: it moved MMoE's income AUC by less than 0.001; it is kept because no
# single row should dominate a layer's input.)
LOG_SCALED_COLUMNS = ("wage_per_hour", "capital_gains", "capital_losses", "stock_dividends")

@dataclass
class EncodedFeatures(FeatureBatch):
    """Encoded rows: ``categorical`` (N, C) int64 ids and ``numeric`` (N, M) float64 standardised values,
    with the column names: the batch format of ``minimoe.FeatureInput``.

    Indexes by rows like an array (``features[rows]``, ``len(features)``), so a training loop can batch
    it; an int index keeps the row axis (one row).
    """

    categorical_names: tuple[str, ...]
    numeric_names: tuple[str, ...]

    def __post_init__(self) -> None:
        self.categorical_names, self.numeric_names = tuple(self.categorical_names), tuple(self.numeric_names)
        for name, array, names in (("categorical", self.categorical, self.categorical_names),
                                   ("numeric", self.numeric, self.numeric_names)):
            if array.ndim != 2 or array.shape[1] != len(names):
                raise ValueError(f"{name} must have shape (N, {len(names)}), one column per name, "
                                 f"got {array.shape}")
        if len(self.categorical) != len(self.numeric):
            raise ValueError(f"categorical and numeric must have the same rows, got {len(self.categorical)} "
                             f"and {len(self.numeric)}")

    def __getitem__(self, rows) -> EncodedFeatures:
        if isinstance(rows, numbers.Integral):
            rows = [rows]
        return EncodedFeatures(self.categorical[rows], self.numeric[rows],
                               self.categorical_names, self.numeric_names)

    def __repr__(self) -> str:
        return (f"EncodedFeatures(rows={len(self)}, categorical={len(self.categorical_names)} columns, "
                f"numeric={len(self.numeric_names)} columns)")


UNSEEN_ID, MISSING_ID = 0, 1


def _names(argument: str, names, columns: Mapping) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"{argument} must be a sequence of column names, got {names!r}")
    names = tuple(names)
    for name in names:
        if name == WEIGHT_COLUMN:
            raise ValueError(f"{argument} lists {WEIGHT_COLUMN!r}: it is a survey weight, never a feature")
        if name not in columns:
            raise ValueError(f"{argument} lists {name!r}, which is not among the columns given "
                             f"({', '.join(columns)})")
    return names


def _column_rows(columns: Mapping, names: Sequence[str]) -> int:
    lengths = {name: len(columns[name]) for name in names}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns must all have the same number of rows, got {lengths}")
    return next(iter(lengths.values()), 0)


@dataclass
class CensusEncoder:
    """Categorical columns -> ids, numeric columns -> standardised values, from training rows only.

    Ids of a categorical column: 0 for a value unseen in training, 1 for missing (``"?"``), and the
    training values, sorted, from 2 up. Numeric columns: ``(x - mean) / std`` with the training mean
    and std (a constant column gets std 1); the heavy-tailed money columns in ``LOG_SCALED_COLUMNS``
    are replaced by log(1 + x) first. Build one with ``CensusEncoder.fit``.
    """

    categorical_names: tuple[str, ...]
    numeric_names: tuple[str, ...]
    vocabularies: dict[str, tuple[str, ...]]     # column -> training values, id = position + 2
    mean: np.ndarray                             # (M,)
    std: np.ndarray                              # (M,)
    _ids: dict[str, dict[str, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ids = {name: {MISSING: MISSING_ID, **{v: i + 2 for i, v in enumerate(values)}}
                     for name, values in self.vocabularies.items()}

    @classmethod
    def fit(cls, columns: Mapping[str, np.ndarray], categorical: Sequence[str] = (),
            numeric: Sequence[str] = ()) -> CensusEncoder:
        if not isinstance(columns, Mapping):
            raise TypeError(f"columns must be a dict of column name -> array, got {type(columns).__name__}")
        categorical = _names("categorical", categorical, columns)
        numeric = _names("numeric", numeric, columns)
        both = set(categorical) & set(numeric)
        if both or len(set(categorical)) < len(categorical) or len(set(numeric)) < len(numeric):
            raise ValueError(f"categorical and numeric must name each column once, got categorical={categorical}, "
                             f"numeric={numeric}")
        if _column_rows(columns, categorical + numeric) < 1:
            raise ValueError("columns must hold at least one training row, got 0")
        vocabularies = {name: tuple(sorted(set(np.asarray(columns[name]).tolist()) - {MISSING}))
                        for name in categorical}
        values = _numeric_matrix(columns, numeric)                                 # (N, M)
        std = values.std(axis=0)
        return cls(categorical, numeric, vocabularies, values.mean(axis=0), np.where(std > 0, std, 1.0))

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Ids per categorical column, the 2 reserved ones included: an embedding table's row count."""
        return tuple(len(self.vocabularies[name]) + 2 for name in self.categorical_names)

    def transform(self, columns: Mapping[str, np.ndarray]) -> EncodedFeatures:
        if not isinstance(columns, Mapping):
            raise TypeError(f"columns must be a dict of column name -> array, got {type(columns).__name__}")
        missing = [name for name in self.categorical_names + self.numeric_names if name not in columns]
        if missing:
            raise ValueError(f"columns lacks the encoder's columns {missing}")
        n = _column_rows(columns, self.categorical_names + self.numeric_names)
        categorical = np.empty((n, len(self.categorical_names)), dtype=np.int64)  # (N, C)
        for j, name in enumerate(self.categorical_names):
            ids = self._ids[name]
            categorical[:, j] = np.fromiter((ids.get(v, UNSEEN_ID) for v in columns[name]), np.int64, count=n)
        numeric = (_numeric_matrix(columns, self.numeric_names) - self.mean) / self.std   # (N, M)
        return EncodedFeatures(categorical, numeric.reshape(n, -1), self.categorical_names, self.numeric_names)


def _numeric_matrix(columns: Mapping, names: Sequence[str]) -> np.ndarray:
    """(N, M) float64 of the named columns; every value finite."""
    n = _column_rows(columns, names)
    values = np.empty((n, len(names)))                                             # (N, M)
    for j, name in enumerate(names):
        try:
            values[:, j] = np.asarray(columns[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"columns[{name!r}] must hold numbers, got dtype {np.asarray(columns[name]).dtype}") \
                from None
        if not np.isfinite(values[:, j]).all():
            raise ValueError(f"columns[{name!r}] must be finite, found {values[~np.isfinite(values[:, j]), j][0]}")
        if name in LOG_SCALED_COLUMNS:
            if (values[:, j] < 0).any():
                raise ValueError(f"columns[{name!r}] must be >= 0 (it is log-scaled), found {values[:, j].min()}")
            values[:, j] = np.log1p(values[:, j])
    return values


# ------------------------------------------------------------------------------------------ data sets

@dataclass(repr=False)
class CensusData:
    """Encoded splits of one task group. Each split is (features: EncodedFeatures, labels: (N, 2) float64)."""

    group: int
    task_names: tuple[str, str]
    train: tuple[EncodedFeatures, np.ndarray]
    validation: tuple[EncodedFeatures, np.ndarray]
    test: tuple[EncodedFeatures, np.ndarray]
    encoder: CensusEncoder
    test_file_only: bool                          # True: all three splits were cut from the test file

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(getattr(self, s)[0])}" for s in ("train", "validation", "test"))
        return (f"CensusData(group={self.group}, tasks={self.task_names}, {sizes}, "
                f"test_file_only={self.test_file_only})")


def _take(columns: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in columns.items()}


def make_census_data(train_columns: Mapping[str, np.ndarray] | None, test_columns: Mapping[str, np.ndarray],
                     group: int = 1, seed=0, n_validation: int = 20_000, n_train: int = 60_000) -> CensusData:
    """Split, label and encode columns read by ``read_census_file``; the encoder sees the train split only.

    With the training file (``train_columns`` given): a seeded random ``n_validation`` (default 20,000)
    of its rows is the validation split, the rest (179,523 rows of the full file) the train split,
    and the whole test file the test split. (The paper instead trains on the whole training file and
    halves the test file into validation and test.) With the test file only (``train_columns`` None):
    its rows are split, seeded, into ``n_train`` / ``n_validation`` / the rest, by default 60,000 /
    20,000 / 19,762. Rows keep their file order within a split.
    """
    group = _check_group(group)
    n_validation = check_positive_int("n_validation", n_validation)
    rng = make_rng(seed)
    if train_columns is None:
        n_train = check_positive_int("n_train", n_train)
        n = _column_rows(test_columns, COLUMNS)
        if n_train + n_validation >= n:
            raise ValueError(f"n_train + n_validation must leave test rows: the test file has {n} rows, "
                             f"got n_train={n_train}, n_validation={n_validation}")
        order = rng.permutation(n)
        cuts = (order[:n_train], order[n_train:n_train + n_validation], order[n_train + n_validation:])
        train, validation, test = (_take(test_columns, np.sort(rows)) for rows in cuts)
    else:
        n = _column_rows(train_columns, COLUMNS)
        if n_validation >= n:
            raise ValueError(f"n_validation must leave training rows: the training file has {n} rows, "
                             f"got n_validation={n_validation}")
        order = rng.permutation(n)
        validation, train = (_take(train_columns, np.sort(rows)) for rows in (order[:n_validation],
                                                                              order[n_validation:]))
        test = test_columns
    categorical, numeric = feature_columns(group)
    encoder = CensusEncoder.fit(train, categorical=categorical, numeric=numeric)
    splits = [(encoder.transform(part), census_labels(part, group)) for part in (train, validation, test)]
    return CensusData(group, TASK_GROUPS[group], *splits, encoder=encoder, test_file_only=train_columns is None)


def load_census(group: int = 1, data_home=None, seed=0, download: bool = True,
                n_validation: int = 20_000, n_train: int = 60_000) -> CensusData:
    """Read the files (``load_census_files``) and build the encoded splits (``make_census_data``)."""
    group = _check_group(group)
    train_columns, test_columns = load_census_files(data_home, download=download)
    return make_census_data(train_columns, test_columns, group, seed, n_validation, n_train)
