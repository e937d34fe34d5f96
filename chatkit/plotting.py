"""Plots for the performance notebook, with matplotlib: each function returns a Figure.

- `plot_speed_vs_bytes()`: measured decode tokens/s against weight bytes read per token, log-log,
  with the memory-bandwidth prediction tokens/s = bandwidth ÷ bytes as a line;
- `plot_bars()`: one bar per labelled measurement (dtypes, MoE against dense, methods);
- `plot_token_time()`: the share of each model's time per token that each part takes (stacked bars);
- `plot_first_token()`: time to first token against prompt length (prefill grows, decode does not).

Figures are made without pyplot, so nothing is drawn twice or left open, and they draw themselves as
a PNG image when a notebook cell ends with one (`_repr_png_`): without pyplot, Jupyter's inline
backend is never set up and a bare Figure would show only as the text `<Figure size ...>`.

Example:
    >>> fig = plot_bars({"fp32": 15.8, "bf16": 26.8}, ylabel="tokens/s")
    >>> [float(bar.get_height()) for bar in fig.axes[0].patches]
    [15.8, 26.8]
"""

import io


def figure_png(fig, dpi=100):
    """The PNG bytes of a matplotlib Figure (no version stamp in the file, so re-runs write the same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width=6.0, height=3.6):
    # A bare Figure (not pyplot's): no global state, no backend needed; it shows itself as a PNG.
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        """A Figure that Jupyter displays as a PNG image when a cell ends with it."""

        def _repr_png_(self):
            return figure_png(self)

    fig = ShownFigure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def plot_speed_vs_bytes(
    weight_bytes, tokens_per_s, bandwidth_gb_s, labels=None, title=None, bandwidth_label="copy bandwidth"
):
    """Measured tokens/s against bytes per token, with the line bandwidth ÷ bytes.

    `weight_bytes` and `tokens_per_s` are equal-length sequences (one point per model);
    `bandwidth_gb_s` is a measured bandwidth (GB/s) or a dict {label: GB/s} for several lines.
    """
    import numpy as np

    if len(weight_bytes) != len(tokens_per_s) or not len(weight_bytes):
        raise ValueError(
            f"weight_bytes and tokens_per_s must be non-empty and of equal length, got {len(weight_bytes)} and {len(tokens_per_s)}."
        )
    lines = bandwidth_gb_s if isinstance(bandwidth_gb_s, dict) else {bandwidth_label: bandwidth_gb_s}
    fig, ax = _figure()
    x = np.asarray(weight_bytes, dtype=float) / 1e6
    y = np.asarray(tokens_per_s, dtype=float)
    grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 50)
    for (name, gb_s), style in zip(lines.items(), ("--", ":", "-.")):
        ax.plot(grid, gb_s * 1e3 / grid, style, color="grey", label=f"{name} ÷ bytes ({gb_s:.0f} GB/s)")
    ax.plot(x, y, "o", color="C0", label="measured")
    for xi, yi, label in zip(x, y, labels or []):
        ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weights read per token (MB)")
    ax.set_ylabel("decode tokens/s (batch 1)")
    ax.set_title(title or "Decoding speed against memory bandwidth ÷ bytes per token", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def plot_bars(values, ylabel="tokens/s", title=None, annotate="{:.1f}"):
    """One bar per item of `values` ({label: number}), the number written on each bar."""
    if not values:
        raise ValueError("values must be a non-empty {label: number} dict.")
    fig, ax = _figure()
    labels, heights = list(values), [float(v) for v in values.values()]
    bars = ax.bar(labels, heights, color=[f"C{i % 10}" for i in range(len(labels))])
    for bar, height in zip(bars, heights):
        ax.annotate(
            annotate.format(height), (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom", fontsize=8
        )
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    return fig


def plot_token_time(labels, parts, title):
    """Horizontal stacked bars: what share of each model's time per token goes to each named part.

    `parts` is {part name: [seconds per model]}, as `chatkit.speed.token_time_parts` gives them; each
    bar is 100% of that model's time per token, written at its end in milliseconds. A negative part
    (an overlap of two others) is drawn as zero.
    """
    if not labels or any(len(v) != len(labels) for v in parts.values()):
        raise ValueError("labels and every list in parts must be non-empty and of equal length.")
    totals = [sum(values) for values in zip(*parts.values())]
    fig, ax = _figure(height=0.45 * len(labels) + 2.0)
    left = [0.0] * len(labels)
    for i, (name, seconds) in enumerate(parts.items()):
        widths = [100 * max(s, 0.0) / total for s, total in zip(seconds, totals)]
        ax.barh(labels, widths, left=left, color=f"C{i}", label=name)
        left = [a + b for a, b in zip(left, widths)]
    for y, (x, total) in enumerate(zip(left, totals)):
        ax.annotate(f"{1e3 * total:.1f} ms", (x, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_xlim(0, 115)
    ax.set_xlabel("share of the time per token (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(parts))
    ax.invert_yaxis()
    return fig


def plot_first_token(prompt_lengths, first_token_s, decode_token_s=None):
    """Time to first token against prompt length; optionally one decode step's time for comparison."""
    if len(prompt_lengths) != len(first_token_s) or not len(prompt_lengths):
        raise ValueError("prompt_lengths and first_token_s must be non-empty and of equal length.")
    fig, ax = _figure()
    ax.plot(prompt_lengths, [1e3 * t for t in first_token_s], "o-", label="time to first token (prefill)")
    if decode_token_s is not None:
        ax.axhline(1e3 * decode_token_s, color="grey", linestyle="--", label="one decoded token")
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("milliseconds")
    ax.set_title("Prefill grows with the prompt; each decoded token costs the same")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig
