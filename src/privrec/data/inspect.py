"""``privrec data inspect FILE``: guess how to load an interaction log from its first lines.

:func:`inspect_file` reads only the head of a file (plain, ``.gz``, ``.bz2`` or ``.xz``), sniffs the field
separator and whether the first line is a header, classifies each column from its values (whole numbers,
decimals, epoch-like seconds, text) and, with a header, its name, and assigns the roles user, item, rating
and timestamp. :meth:`Inspection.overrides` gives the ``dataset.*`` overrides that load the file with
:class:`~privrec.data.loaders.Delimited`; :meth:`Inspection.describe` says what was found.

Nothing printed holds a record value: only counts, column positions, the kinds of the columns and, when the
first line is a header, the column names. Values are looked at (min, max, distinct counts) but never shown.

Rules, in order (each column takes at most one role):

1. With a header, a column whose name matches a role (``user``/``uid``/``customer``...,
   ``item``/``movie``/``track``/``isbn``..., ``rating``/``score``/``count``/``plays``...,
   ``timestamp``/``time``/``date``...) takes it.
2. ``timestamp``: a whole-number column whose values all lie in epoch seconds (1973-2100). Epoch
   milliseconds and date strings are reported but not proposed: :class:`Delimited` wants seconds.
3. ``user`` and ``item``: the first two remaining columns that hold whole numbers or text (logs put the
   user first).
4. ``rating``: the first remaining numeric column; a whole-number column reaching above 10 is reported as a
   count (play counts: see ``preprocess.weight``). Without one, ``rating_col=null`` (every row weighs 1).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.data.loaders import SEPARATORS
from privrec.errors import ConfigError, DataValidationError

__all__ = ["ROLES", "ColumnGuess", "Inspection", "inspect_file"]

#: The roles a column can take, in the order :class:`~privrec.data.loaders.Delimited` names them.
ROLES = ("user", "item", "rating", "timestamp")
#: Candidate separators, most likely first (ties go to the earlier one).
_CANDIDATES = ("\t", ",", ";", "|", "::", " ")
_SUFFIXES = (".gz", ".bz2", ".xz")
#: Epoch seconds from 1973-03-03 to 2100-01-01; milliseconds are the same times x 1000.
_EPOCH_S = (1e8, 4102444800.0)
_EPOCH_MS = (1e11, 4102444800.0e3)
#: ISO dates (2024-01-31, with or without a time) and day/month/year forms (31/01/2024, 1.31.24).
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")
_NAMES = {
    "user": ("user", "userid", "uid", "customer", "customerid", "member", "listener", "reader", "visitor",
             "account", "person", "client", "reviewer", "reviewerid", "profile", "subscriber"),
    "item": ("item", "itemid", "iid", "movie", "movieid", "product", "productid", "song", "track", "trackid",
             "artist", "artistid", "book", "isbn", "asin", "sku", "article", "video", "business", "recipe",
             "object", "doc", "docid", "title", "traname", "artname", "album", "game", "anime", "joke", "restaurant"),
    "rating": ("rating", "ratings", "score", "stars", "star", "count", "counts", "plays", "playcount", "weight",
               "value", "clicks", "quantity", "qty", "freq", "frequency", "preference", "overall", "bookrating"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "epoch", "created", "createdat", "when",
                  "unixtime", "unixreviewtime", "seconds"),
}


@dataclass(frozen=True)
class ColumnGuess:
    """What the head of one column looks like (no values). ``kind``: ``integer``, ``decimal``, ``text`` or
    ``empty``; ``note``: ``epoch seconds``, ``epoch milliseconds``, ``date text``, ``small range`` (numbers
    in [0, 10]), ``count`` (whole numbers >= 0 above 10) or ``""``."""

    position: int
    name: str | None
    kind: str
    note: str
    missing: int
    distinct: int


@dataclass(frozen=True)
class Inspection:
    """The result of :func:`inspect_file`. ``roles``: role -> column position (``None`` when no column fits);
    ``by``: role -> how it was assigned (``name``, ``values`` or ``position``); ``repeated_pairs``: rows of
    the head whose (user, item) pair appeared before in it."""

    path: Path
    lines: int
    sep: str
    header: bool
    columns: tuple[ColumnGuess, ...]
    roles: dict[str, int | None]
    by: dict[str, str]
    repeated_pairs: int
    compression: str | None

    @property
    def sep_override(self) -> str:
        """``dataset.sep``'s value: a name (``tab``, ``comma``...) or the quoted separator."""
        names = {v: k for k, v in SEPARATORS.items()}
        return names.get(self.sep, _hydra_quote(self.sep, always=True))

    def overrides(self) -> list[str]:
        """The ``dataset.*`` overrides that load the file (columns by position, which works with or
        without a header)."""
        out = ["dataset=delimited", f"dataset.path={_hydra_quote(str(self.path))}", f"dataset.sep={self.sep_override}",
               f"dataset.header={'true' if self.header else 'false'}"]
        for role in ROLES:
            pos = self.roles.get(role)
            out.append(f"dataset.{role}_col={'null' if pos is None else pos}")
        return out

    def command(self) -> str:
        """``privrec run`` with :meth:`overrides`, quoted for a POSIX shell."""
        return " ".join(["privrec", "run", *(_shell_quote(o) for o in self.overrides())])

    def describe(self) -> str:
        """Lines for a terminal: what was read, each column's kind and role, the command, and advice."""
        what = f"{self.compression}-compressed " if self.compression else ""
        lines = [f"privrec: {self.path} ({what}head only: {self.lines} lines read)",
                 (f"  separator: {self.sep_override}   header: {'yes' if self.header else 'no'}   "
                  f"columns: {len(self.columns)}")]
        role_of = {pos: role for role, pos in self.roles.items() if pos is not None}
        for col in self.columns:
            label = f"column {col.position}" + (f" {col.name!r}" if col.name is not None else "")
            role = role_of.get(col.position)
            shown_note = col.note if role == "rating" or col.note not in ("count", "small range") else ""
            kind = col.kind + (f" ({shown_note})" if shown_note else "")
            shown = f"-> {role} (by {self.by[role]})" if role else "-> not used"
            extra = f", {col.missing} empty" if col.missing else ""
            lines.append(f"  {label}: {kind}, {col.distinct} distinct in the head{extra}  {shown}")
        missing = [r for r in ("user", "item") if self.roles.get(r) is None]
        if missing:
            lines.append(f"  no column fits {' and '.join(missing)}: set dataset.{missing[0]}_col by hand.")
        lines.append("load it with:")
        lines.append(f"  {self.command()}")
        rating = self.roles.get("rating")
        if rating is not None and self.columns[rating].note == "count":
            lines.append("  the rating column looks like counts (whole numbers above 10): add preprocess.weight=log "
                         "or preprocess.weight=bm25 (README: Your own data).")
        if self.repeated_pairs:
            lines.append(f"  {self.repeated_pairs} row(s) of the head repeat a (user, item) pair: "
                         "preprocess.duplicates merges them (max, default; sum adds counts; last keeps the latest).")
        lines.extend(f"  column {col.position} looks like {col.note}: dataset.timestamp_col needs epoch seconds, "
                     "so it is left out." for col in self.columns
                     if col.position not in role_of and col.note in ("epoch milliseconds", "date text"))
        lines.append("  user attributes (demographics) come from a second table: dataset.user_attributes_path=FILE; "
                     "without one, attribute segments and attacks are recorded as missing.")
        return "\n".join(lines)


def inspect_file(path: str | Path, *, lines: int = 1000) -> Inspection:
    """Inspect the first ``lines`` lines of ``path`` (see the module docstring)."""
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 2:
        raise ConfigError(f"data inspect --lines must be an integer >= 2; got {lines!r}.")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise DataValidationError(f"data inspect FILE must be an existing file; got {file}, which does not exist.")
    compression = next((s for s in _SUFFIXES if file.name.lower().endswith(s)), None)
    if compression is None and file.name.lower().endswith((".zip", ".zst", ".tar")):
        raise ConfigError(f"data inspect reads plain, .gz, .bz2 or .xz files; got {file.name.rsplit('.', 1)[-1]!r} "
                          "(unpack it first).")
    head = _head(file, compression, lines)
    if not head:
        raise DataValidationError(f"data inspect FILE must hold text lines; got none in the head of {file.name}.")
    sep, rows = _sniff(head)
    width = len(rows[0])
    header, names = _header(rows)
    body = rows[1:] if header else rows  # a header needs rows below it (_header), so body is never empty
    columns = tuple(_column(i, names[i] if names else None, [r[i] for r in body]) for i in range(width))
    roles, by = _roles(columns)
    repeated = 0
    if roles["user"] is not None and roles["item"] is not None:
        pairs = pd.DataFrame({"u": [r[roles["user"]] for r in body], "i": [r[roles["item"]] for r in body]})
        repeated = int(pairs.duplicated().sum())
    return Inspection(path=file, lines=len(head), sep=sep, header=header, columns=columns, roles=roles, by=by,
                      repeated_pairs=repeated, compression=compression[1:] if compression else None)


# ---------------------------------------------------------------------- reading
def _head(file: Path, compression: str | None, n: int) -> list[str]:
    """The first ``n`` non-empty lines (a BOM removed); only those bytes are decompressed."""
    out: list[str] = []
    try:
        with _open(file, compression) as raw:
            for line in raw:
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                if text.strip():
                    out.append(text.removeprefix("\ufeff") if not out else text)
                    if len(out) == n:
                        break
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DataValidationError(f"data inspect FILE must be readable{' ' + compression if compression else ''}; "
                                  f"got {file.name} ({type(exc).__name__}).") from None
    return out


def _open(file: Path, compression: str | None) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile | io.BufferedReader:
    """``file`` for reading bytes, decompressed as it is read (the caller closes it)."""
    if compression == ".gz":
        return gzip.GzipFile(file, "rb")
    if compression == ".bz2":
        return bz2.BZ2File(file, "rb")
    if compression == ".xz":
        return lzma.LZMAFile(file, "rb")
    return file.open("rb")


def _split(lines: list[str], sep: str) -> list[list[str]]:
    if len(sep) > 1:
        return [line.split(sep) for line in lines]
    if sep == " ":
        return [line.split() for line in lines]  # runs of spaces are one separator, as in aligned columns
    return list(csv.reader(lines, delimiter=sep, quotechar='"'))


def _sniff(head: list[str]) -> tuple[str, list[list[str]]]:
    """The separator that splits most lines into the same number (>= 2) of fields."""
    best: tuple[float, int, str, list[list[str]]] | None = None
    for rank, sep in enumerate(_CANDIDATES):
        if sep == "::" and "::" not in head[0]:
            continue
        try:
            rows = _split(head, sep)
        except csv.Error:
            continue
        widths = np.array([len(r) for r in rows])
        mode = int(np.bincount(widths).argmax())
        if mode < 2:
            continue
        share = float(np.mean(widths == mode))
        key = (share, -rank)
        if best is None or key > (best[0], -best[1]):
            best = (share, rank, sep, rows)
    if best is None or best[0] < 0.9:
        raise DataValidationError(
            "data inspect FILE must have one separator (tab, comma, semicolon, pipe, '::' or space) splitting at "
            f"least 90% of its lines into the same number of fields (>= 2); got "
            f"{'none' if best is None else f'{best[0]:.0%} at best'} in {len(head)} lines."
        )
    _, _, sep, rows = best
    mode = int(np.bincount([len(r) for r in rows]).argmax())
    return sep, [r for r in rows if len(r) == mode]


def _header(rows: list[list[str]]) -> tuple[bool, list[str] | None]:
    """Whether the first row names the columns: some column is numeric below it but not in it, or (all text)
    one of its fields is a role name and none of the other rows has that field."""
    first, rest = rows[0], rows[1:]
    if not rest:
        return False, None
    for i, field in enumerate(first):
        below = [r[i] for r in rest if r[i] != ""]
        if below and not _is_number(field) and np.mean([_is_number(v) for v in below]) >= 0.99:
            return True, [f.strip() for f in first]
    named = [i for i, f in enumerate(first) if _name_role(f) is not None]
    if named and all(all(r[i] != first[i] for r in rest) for i in named):
        return True, [f.strip() for f in first]
    return False, None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------- columns
def _column(position: int, name: str | None, values: list[str]) -> ColumnGuess:
    series = pd.Series(values, dtype=object).str.strip()
    present = series[series != ""]
    missing = len(series) - len(present)
    distinct = int(present.nunique())
    if present.empty:
        return ColumnGuess(position, name, "empty", "", missing, 0)
    numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(numbers).all():
        note = "date text" if present.str.match(_DATE).all() else ""
        return ColumnGuess(position, name, "text", note, missing, distinct)
    whole = bool((numbers == np.floor(numbers)).all()) and bool(present.str.fullmatch(r"[-+]?\d+").all())
    low, high = float(numbers.min()), float(numbers.max())
    note = ""
    if whole and _EPOCH_S[0] <= low and high <= _EPOCH_S[1]:
        note = "epoch seconds"
    elif whole and _EPOCH_MS[0] <= low and high <= _EPOCH_MS[1]:
        note = "epoch milliseconds"
    elif low >= 0 and high <= 10:
        note = "small range"
    elif whole and low >= 0:
        note = "count"
    return ColumnGuess(position, name, "integer" if whole else "decimal", note, missing, distinct)


def _name_role(name: str | None) -> str | None:
    """The role a column name matches: the whole name, or one of its words (``user_id`` -> ``user``)."""
    if not name:
        return None
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower()) if w]
    for role in ROLES:  # the whole name first: "playcount" is a rating, not a ...
        if squashed in _NAMES[role]:
            return role
    for word in words:
        for role in ROLES:
            if word in _NAMES[role]:
                return role
    return None


def _roles(columns: tuple[ColumnGuess, ...]) -> tuple[dict[str, int | None], dict[str, str]]:
    roles: dict[str, int | None] = dict.fromkeys(ROLES)
    by: dict[str, str] = {}
    taken: set[int] = set()

    def take(role: str, col: ColumnGuess, how: str) -> None:
        roles[role] = col.position
        by[role] = how
        taken.add(col.position)

    for col in columns:  # 1. names
        role = _name_role(col.name)
        if role is None or roles[role] is not None or not _fits(role, col):
            continue
        take(role, col, "name")
    if roles["timestamp"] is None:  # 2. epoch seconds
        for col in columns:
            if col.position not in taken and col.note == "epoch seconds":
                take("timestamp", col, "values")
                break
    for role in ("user", "item"):  # 3. the first id-like columns, in order
        if roles[role] is None:
            col_id = next((c for c in columns if c.position not in taken and c.kind in ("integer", "text")
                           and c.note not in ("epoch milliseconds", "date text")), None)
            if col_id is not None:
                take(role, col_id, "position")
    if roles["rating"] is None:  # 4. the first remaining numeric column
        col_r = next((c for c in columns if c.position not in taken and c.kind in ("integer", "decimal")
                      and not c.note.startswith("epoch")), None)
        if col_r is not None:
            take("rating", col_r, "values")
    return roles, by


def _fits(role: str, col: ColumnGuess) -> bool:
    """Whether a column named for ``role`` holds what Delimited needs for it."""
    if role == "timestamp":
        return col.note == "epoch seconds"
    if role == "rating":
        return col.kind in ("integer", "decimal") and col.missing == 0
    return col.kind in ("integer", "text") and col.missing == 0


# ---------------------------------------------------------------------- quoting
def _hydra_quote(value: str, *, always: bool = False) -> str:
    """A Hydra override value: as is when plain, else single-quoted with Hydra's escapes."""
    if not always and re.fullmatch(r"[\w/.\-~+@%]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _shell_quote(token: str) -> str:
    """``token`` for a POSIX shell; double quotes when it holds single quotes and nothing the shell expands."""
    if re.fullmatch(r"[\w/.\-~+@%=:,]+", token):
        return token
    if "'" in token and not re.search(r'["$`\\!]', token):
        return f'"{token}"'
    return shlex.quote(token)
