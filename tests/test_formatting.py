"""chatkit.formatting: bytes and parameter counts for people, and small aligned text tables."""

import pytest

from chatkit import formatting
from chatkit.formatting import Table


def test_format_bytes():
    assert formatting.format_bytes(37.1 * formatting.GiB) == "37.1 GiB"
    assert formatting.format_bytes(3 * formatting.MiB // 2) == "1.5 MiB"
    assert formatting.format_bytes(980) == "980 B"


@pytest.mark.parametrize(
    "n,text",
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (100_000, "97.7 KiB"),
        (formatting.MiB, "1.0 MiB"),
        (16_060_522_496, "15.0 GiB"),
        (-2 * formatting.GiB, "-2.0 GiB"),
    ],
)
def test_format_bytes_uses_binary_units(n, text):
    assert formatting.format_bytes(n) == text


@pytest.mark.parametrize(
    "count,text",
    [
        (46_702_792_704, "46.7B"),
        (8_030_261_248, "8.03B"),
        (361_821_120, "362M"),
        (494_032_768, "494M"),
        (1_200_000_000_000, "1.2T"),
        (1234, "1,234"),
        (999_999, "999,999"),
        (7, "7"),
    ],
)
def test_params_text(count, text):
    assert formatting.params_text(count) == text


def test_table_aligns_the_first_column_left_and_the_others_right():
    table = Table(("dtype", "bytes"), (("bf16", 2), ("fp32", 4)))
    assert str(table) == "dtype  bytes\n-----  -----\nbf16       2\nfp32       4"
    assert repr(table) == str(table)  # a notebook cell ending with it shows the same text


def test_table_widens_columns_to_their_longest_cell():
    table = Table(("model", "GiB"), (("Meta-Llama-3-8B-Instruct", 18.55), ("tiny", 0.1)))
    lines = str(table).splitlines()
    assert lines == [
        "model                       GiB",
        "------------------------  -----",
        "Meta-Llama-3-8B-Instruct  18.55",
        "tiny                        0.1",
    ]
    assert len({len(line) for line in lines}) == 1


def test_table_title_comes_first_and_notes_last():
    table = Table(("a", "b"), (("x", 1),), title="My table", notes=("note one", "note two"))
    lines = str(table).splitlines()
    assert lines[0] == "My table"
    assert lines[1:4] == ["a  b", "-  -", "x  1"]
    assert lines[-2:] == ["note one", "note two"]
    assert Table(("a",), ()).__str__() == "a\n-"  # no rows, no title, no notes


def test_progress_passes_items_through_and_can_be_turned_off(monkeypatch, capsys):
    from chatkit.formatting import progress

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert list(progress(range(3), "counting")) == [0, 1, 2]
    assert progress(range(3), "counting").disable
    monkeypatch.delenv("TQDM_DISABLE")
    assert not progress(range(3), "counting").disable
