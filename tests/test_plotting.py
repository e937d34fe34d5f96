"""Tests for chatkit.plotting: each plot returns a matplotlib Figure with what it promises."""

import pytest
from matplotlib.figure import Figure

from chatkit import plotting


def test_speed_vs_bytes_has_points_and_prediction_lines():
    fig = plotting.plot_speed_vs_bytes(
        [20e6, 90e6, 250e6], [300, 80, 30], {"copy": 40, "read": 37}, labels=["7M", "27M", "69M"]
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two predictions + the measurements
    measured = ax.lines[-1]
    assert list(measured.get_ydata()) == [300, 80, 30]
    prediction = ax.lines[0]  # 40 GB/s ÷ bytes: 40e9 / 20e6 = 2000 tok/s at 20 MB
    x, y = prediction.get_xdata(), prediction.get_ydata()
    assert y[0] == pytest.approx(40e3 / x[0])
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_speed_vs_bytes_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal length"):
        plotting.plot_speed_vs_bytes([1e6, 2e6], [10], 40)


def test_bars_one_per_label():
    fig = plotting.plot_bars({"fp32": 15.8, "bf16": 26.8, "fp16": 50.0}, title="dtypes")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [15.8, 26.8, 50.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fp32", "bf16", "fp16"]
    with pytest.raises(ValueError, match="non-empty"):
        plotting.plot_bars({})


def test_first_token_plot():
    fig = plotting.plot_first_token([16, 64, 256], [0.01, 0.03, 0.1], decode_token_s=0.02)
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError):
        plotting.plot_first_token([16], [])


@pytest.mark.parametrize(
    "make",
    [
        lambda: plotting.plot_bars({"a": 1.0, "b": 2.0}),
        lambda: plotting.plot_first_token([16, 64], [0.01, 0.03]),
        lambda: plotting.plot_speed_vs_bytes([1e6, 2e6], [10, 5], 40),
    ],
)
def test_every_plot_shows_itself_as_a_png_in_a_notebook(make):
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(make())  # what Jupyter stores when a cell ends with the figure
    assert data["image/png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert plotting.figure_png(make()) == plotting.figure_png(make())  # no timestamp: same plot, same bytes
