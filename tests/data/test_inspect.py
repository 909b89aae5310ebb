"""data inspect: separator, header and column roles from the head of a file, never a record value."""

from __future__ import annotations

import bz2
import gzip
import shlex

import pytest

from privrec.data import Delimited
from privrec.data.inspect import inspect_file
from privrec.errors import ConfigError, DataValidationError

ROWS = [  # user, item, rating, epoch seconds
    ("196", "242", "3", "881250949"),
    ("186", "302", "3", "891717742"),
    ("22", "377", "1", "878887116"),
    ("244", "51", "2", "880606923"),
    ("166", "346", "1", "886397596"),
    ("298", "474", "4", "884182806"),
]


def _write(path, rows, sep, header=None):
    lines = ([sep.join(header)] if header else []) + [sep.join(r) for r in rows]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    elif path.suffix == ".bz2":
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(("sep", "shown"), [("\t", "tab"), (",", "comma"), (";", "semicolon"), ("|", "pipe"),
                                            (" ", "space"), ("::", "'::'")])
def test_separator_without_header_roles_by_values_and_position(tmp_path, sep, shown):
    found = inspect_file(_write(tmp_path / "log.txt", ROWS, sep))
    assert found.sep == sep and found.sep_override == shown and not found.header
    assert found.roles == {"user": 0, "item": 1, "rating": 2, "timestamp": 3}
    assert found.by == {"user": "position", "item": "position", "rating": "values", "timestamp": "values"}
    assert [c.kind for c in found.columns] == ["integer"] * 4
    assert found.columns[3].note == "epoch seconds" and found.columns[2].note == "small range"
    assert found.lines == len(ROWS) and found.compression is None


def test_header_names_decide_roles_in_any_order(tmp_path):
    rows = [(t, r, i, u) for u, i, r, t in ROWS]
    found = inspect_file(_write(tmp_path / "r.csv.gz", rows, ",", header=("timestamp", "rating", "movieId", "userId")))
    assert found.header and found.compression == "gz"
    assert found.roles == {"user": 3, "item": 2, "rating": 1, "timestamp": 0}
    assert set(found.by.values()) == {"name"}
    assert [c.name for c in found.columns] == ["timestamp", "rating", "movieId", "userId"]
    assert found.overrides() == [
        "dataset=delimited", f"dataset.path={tmp_path / 'r.csv.gz'}", "dataset.sep=comma", "dataset.header=true",
        "dataset.user_col=3", "dataset.item_col=2", "dataset.rating_col=1", "dataset.timestamp_col=0",
    ]


def test_text_ids_with_a_header_of_role_words(tmp_path):
    """All-text columns: the header is recognised by its names (user, song), not by numbers below it."""
    rows = [("anna", "hey jude"), ("bert", "yesterday"), ("anna", "yesterday")]
    found = inspect_file(_write(tmp_path / "x.tsv.bz2", rows, "\t", header=("user", "song")))
    assert found.header and found.roles == {"user": 0, "item": 1, "rating": None, "timestamp": None}
    assert "dataset.rating_col=null" in found.overrides() and "dataset.timestamp_col=null" in found.overrides()
    assert found.compression == "bz2"


def test_quoted_fields_may_hold_the_separator(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('user,item,score\n1,"a, b",4.5\n2,"c, d",3.0\n3,"e",0.5\n')
    found = inspect_file(path)
    assert found.sep == "," and len(found.columns) == 3 and found.header
    assert found.roles["rating"] == 2 and found.columns[2].kind == "decimal"


def test_counts_milliseconds_and_dates_are_reported_not_proposed(tmp_path):
    rows = [(str(u), str(i), str(c), str(1_600_000_000_000 + 37 * u), f"2021-0{1 + u % 9}-1{u % 10}")
            for u, i, c in [(1, 10, 250), (2, 11, 1), (3, 12, 37), (4, 10, 9)]]
    found = inspect_file(_write(tmp_path / "p.tsv", rows, "\t"))
    assert found.roles == {"user": 0, "item": 1, "rating": 2, "timestamp": None}
    assert found.columns[2].note == "count"
    assert found.columns[3].note == "epoch milliseconds" and found.columns[4].note == "date text"
    text = found.describe()
    assert "preprocess.weight=log" in text
    assert "column 3 looks like epoch milliseconds" in text and "column 4 looks like date text" in text


def test_reads_only_the_head(tmp_path):
    path = tmp_path / "long.tsv"
    path.write_text("\n".join("\t".join(r) for r in ROWS * 3) + "\nthis line has another layout\n" + "\x00" * 10)
    found = inspect_file(path, lines=len(ROWS) * 3)
    assert found.lines == 18 and found.roles["timestamp"] == 3


def test_describe_never_prints_a_value(tmp_path):
    rows = [(f"secret-user-{k}", f"secret-item-{k % 3}", str(k % 5 + 1), str(1_000_000_000 + 7919 * k))
            for k in range(30)]
    found = inspect_file(_write(tmp_path / "s.csv", rows, ",", header=("customer", "product", "stars", "when")))
    text = found.describe()
    assert "secret" not in text and "1000007919" not in text
    assert "column 0 'customer': text, 30 distinct in the head  -> user (by name)" in text
    assert found.roles == {"user": 0, "item": 1, "rating": 2, "timestamp": 3}


def test_the_overrides_load_the_file(tmp_path):
    """The printed overrides, as Delimited's fields, read the file (the CLI round trip is in test_own_data)."""
    path = _write(tmp_path / "my log;v2.csv", [(u, i, r, t) for u, i, r, t in ROWS], "|", header=("u", "i", "r", "t"))
    found = inspect_file(path)
    args = shlex.split(found.command())[2:]
    assert args[1] == f"dataset.path='{path}'"  # Hydra-quoted: the name holds a space and a semicolon
    fields = dict(a.removeprefix("dataset.").split("=", 1) for a in args[1:])
    assert found.roles["user"] == 0  # by position: the names u, i, r, t match no role
    data = Delimited(path=str(path), sep=fields["sep"], header=fields["header"] == "true", user_col=0, item_col=1,
                     rating_col=2, timestamp_col=3).load(tmp_path)
    assert data.n_interactions == len(ROWS) and data.timestamp is not None


@pytest.mark.parametrize(("content", "name", "error", "pattern"), [
    (None, "missing.tsv", DataValidationError, r"^data inspect FILE must be an existing file"),
    ("a\nb\nc\n", "one.tsv", DataValidationError, r"must have one separator .* got none in 3 lines"),
    ("", "empty.tsv", DataValidationError, r"must hold text lines; got none"),
    ("1,2\n", "z.zip", ConfigError, r"reads plain, .gz, .bz2 or .xz files; got 'zip'"),
])
def test_errors_are_one_line(tmp_path, content, name, error, pattern):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=pattern) as info:
        inspect_file(path)
    assert "\n" not in str(info.value)


def test_lines_must_be_at_least_two(tmp_path):
    with pytest.raises(ConfigError, match=r"^data inspect --lines must be an integer >= 2; got 1\.$"):
        inspect_file(_write(tmp_path / "a.tsv", ROWS, "\t"), lines=1)
