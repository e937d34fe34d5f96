"""How chatkit writes numbers for people: bytes, parameter counts, small text tables, progress bars.

Example:
    >>> format_bytes(16_060_522_496), params_text(8_030_261_248)
    ('15.0 GiB', '8.03B')
    >>> print(Table(("dtype", "bytes"), (("bf16", 2), ("fp32", 4))))
    dtype  bytes
    -----  -----
    bf16       2
    fp32       4
"""

import os
from dataclasses import dataclass

GiB = 2**30
MiB = 2**20


def format_bytes(n):
    """A byte count for people: "37.1 GiB", "2.6 MiB", "980 B" (binary units, as memory is sold)."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def params_text(count):
    """A parameter count as people write it: '46.7B', '360M', '1,234'.

    Example:
        >>> params_text(46_702_792_704), params_text(361_821_120), params_text(1234)
        ('46.7B', '362M', '1,234')
    """
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6)):
        if count >= size:
            value = count / size
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{count:,}"


@dataclass(frozen=True)
class Table:
    """A small text table: shows itself as aligned columns when it ends a notebook cell."""

    columns: tuple
    rows: tuple
    title: str = ""
    notes: tuple = ()

    def __str__(self):
        cells = [tuple(map(str, self.columns))] + [tuple(map(str, row)) for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]

        def line(row):
            first = row[0].ljust(widths[0])
            return "  ".join([first] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]).rstrip()

        out = [self.title] if self.title else []
        out += [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
        out += self.notes
        return "\n".join(out)

    __repr__ = __str__


def progress(iterable, description, total=None):
    """`iterable` with a progress bar (tqdm) that shows only when the loop runs longer than 2 seconds.

    Fast runs (the embedded model) show nothing, so stored outputs stay clean; slow ones (a big model)
    show how far they are. `TQDM_DISABLE=1` turns the bar off altogether (set by the course's tests).
    """
    from tqdm.auto import tqdm

    disabled = os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes"}
    return tqdm(iterable, desc=description, total=total, delay=2, leave=False, disable=disabled)
