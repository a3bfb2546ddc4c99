"""The 30-day reads chart: an SVG drawn on the server (pygal), with no script in it.

The page shows the same figures in a table, for screen readers and for anyone who
prefers numbers; the image's text alternative says so.
"""

from __future__ import annotations

import re

import pygal  # type: ignore[import-untyped]
from flask_babel import format_date
from pygal.style import Style  # type: ignore[import-untyped]

from vrm_portal.brand_space.service import DayReads

_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#52606d",
    colors=("#1d4ed8",),
    font_family="system-ui, sans-serif",
    label_font_size=14,
    major_label_font_size=14,
    value_font_size=12,
)


def reads_svg(days: list[DayReads], series_label: str) -> str:
    """A bar per day: how many read requests the client made that day (UTC)."""
    chart = pygal.Bar(
        width=760,
        height=300,
        style=_STYLE,
        show_legend=False,
        js=[],
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=7,
        truncate_label=-1,
        print_values=False,
        explicit_size=False,
    )
    chart.x_labels = [format_date(day.day, "d MMM") for day in days]
    # Whole numbers on the axis: a count of requests has no fractions.
    top = max([day.requests for day in days] + [1])
    step = -(-top // 5)
    chart.y_labels = list(range(0, top + step, step))
    chart.add(series_label, [day.requests for day in days])
    svg: str = chart.render(is_unicode=True)
    # pygal always writes a config script for its tooltips; an image needs none.
    return _SCRIPT.sub("", svg)


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
#: The chart's own policy: its inline styles may apply, nothing may run or load.
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
