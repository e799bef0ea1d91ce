"""A user's own data: an N×D table in a ``.npy`` or ``.csv`` file, read as data and checked before use.

``.npy`` files are read with ``np.load(path, allow_pickle=False)``, so nothing in them is ever executed. ``.csv``
files are comma separated (option ``delimiter``), one row per line, with an optional first row of column names (a
first row none of whose cells is a number). Every refusal names the file and what is wrong with it: a missing file,
an unknown extension, an unreadable or non-numeric array, a shape that is not (N, D), a table of fewer than
:data:`MIN_ROWS` rows, a cell that is not a number (its line and column), rows of unequal length, and NaN or ±inf
values (how many, and the first one's row and column). The config validation reads the file too
(``ttdm.config.components``), so these errors come before any job starts; the split sizes are checked by the data
stage, which knows them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ttdm.data import DATASETS
from ttdm.data.base import Dataset
from ttdm.options import REQUIRED, check_options, option

EXTENSIONS = (".npy", ".csv")
MIN_ROWS = 2  # a standard deviation needs two rows


@dataclass(frozen=True)
class FileOptions:
    path: str = option(REQUIRED, "the data file, .npy or .csv, N rows x D columns", pattern=r".+",
                       allowed="a non-empty path")
    delimiter: str = option(",", "the field separator of a .csv file", pattern=r'[^"\r\n0-9A-Za-z.+\-]',
                            allowed="one character other than a letter, a digit, '.', '+', '-', a quote or a line "
                                    "break (e.g. ',', ';', a tab)")


@DATASETS.register("file", options=FileOptions)
def data_file(cfg: dict[str, Any]) -> Dataset:
    """The rows of the table at ``cfg["path"]`` (required), standardised later like the generated sets."""
    opts = check_options(FileOptions, cfg, "file")
    points = read_table(opts.path, delimiter=opts.delimiter)
    return Dataset(source=f"user file {opts.path}", points=points)


def read_table(path: str | Path, *, delimiter: str = ",") -> np.ndarray:
    """The (N, D) float64 table in ``path`` (.npy or .csv), or a ValueError/FileNotFoundError naming the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(f"{path}: unknown extension {path.suffix!r}; allowed: {', '.join(EXTENSIONS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data file not found")
    if suffix == ".npy":
        table, lines = _read_npy(path), None
    else:
        table, lines = _read_csv(path, delimiter)
    _check_finite(path, table, lines)
    if len(table) < MIN_ROWS:
        raise ValueError(f"{path}: the table has {len(table)} row(s); at least {MIN_ROWS} are needed")
    return table


def _read_npy(path: Path) -> np.ndarray:
    """A numeric 2-D array from a .npy file, never unpickled."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:  # object arrays, or a file that is not in the .npy format
        raise ValueError(f"{path}: not a numeric .npy array ({err})") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot be read as a .npy file ({err})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: holds {type(array).__name__}, not a single array")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path}: array of dtype {array.dtype} is not numeric (integers or floats needed)")
    if array.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D table (N rows x D columns), got an array of shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{path}: the table is empty (shape {array.shape})")
    return array.astype(np.float64)


def _read_csv(path: Path, delimiter: str) -> tuple[np.ndarray, list[int]]:
    """A numeric table from a CSV file, and the 1-based line number of each of its rows.

    The first non-blank line is a header when none of its cells reads as a number; otherwise it is data. Blank lines
    are skipped.
    """
    with open(path, newline="") as fh:
        lines = [(n, row) for n, row in enumerate(csv.reader(fh, delimiter=delimiter), start=1) if row]
    if not lines:
        raise ValueError(f"{path}: the file holds no rows")
    header = None
    if not any(_is_number(cell) for cell in lines[0][1]):
        header = [cell.strip() for cell in lines[0][1]]
        lines = lines[1:]
        if not lines:
            raise ValueError(f"{path}: the file has a header row but no data rows")
    width = len(header) if header is not None else len(lines[0][1])
    rows = []
    for line, cells in lines:
        if len(cells) != width:
            raise ValueError(f"{path}: line {line} has {len(cells)} columns, expected {width}")
        row = []
        for c, cell in enumerate(cells):
            try:
                row.append(float(cell))
            except ValueError:
                name = f" ({header[c]!r})" if header is not None else ""
                raise ValueError(
                    f"{path}: line {line}, column {c + 1}{name}: cannot read {cell!r} as a number"
                ) from None
        rows.append(row)
    return np.asarray(rows, dtype=np.float64), [line for line, _ in lines]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _check_finite(path: Path, table: np.ndarray, lines: list[int] | None) -> None:
    """Refuse NaN and ±inf: say how many there are and where the first one is.

    ``lines``: the file line of each row of a CSV (located as in an editor, 1-based), None for a .npy array
    (located by 0-based array indices).
    """
    bad = ~np.isfinite(table)  # (N, D)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        where = f"row {r}, column {c} (0-based)" if lines is None else f"line {lines[r]}, column {c + 1}"
        raise ValueError(f"{path}: {int(bad.sum())} non-finite value(s) (NaN or inf); the first is at {where}")
