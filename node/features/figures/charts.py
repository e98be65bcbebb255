"""Small server-rendered SVG charts (the pages allow no scripts).

Pure: bars in, an ``<svg>`` element's text out. Every label is XML-escaped. A bar is drawn to
its lower bound and, when its sum is uncertain, a lighter band reaches the upper bound (to the
chart's edge when unbounded); the text beside it is the bar's ``shown`` value.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from node.features.figures.coalition_view import Bar

ROW_HEIGHT = 22
LABEL_WIDTH = 90
PLOT_WIDTH = 300
VALUE_WIDTH = 70
SERIES_HEIGHT = 160
POINT_SPACING = 48


def _scale_top(bars: Sequence[Bar]) -> int:
    return max([1, *(bar.high if bar.high is not None else bar.low for bar in bars)])


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)}>'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _length(value: int, top: int, span: int) -> float:
    return round(span * min(value, top) / top, 1)


def bar_chart(bars: Sequence[Bar], title: str) -> str:
    """Horizontal bars, one row per bar, in the given order."""
    top = _scale_top(bars)
    body = []
    for row, bar in enumerate(bars):
        y = row * ROW_HEIGHT
        low = _length(bar.low, top, PLOT_WIDTH)
        high = PLOT_WIDTH if bar.high is None else _length(bar.high, top, PLOT_WIDTH)
        body.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end" '
                    f'font-size="12">{escape(bar.label)}</text>')
        if high > low:
            body.append(f'<rect class="uncertain" x="{LABEL_WIDTH + low}" y="{y + 4}" '
                        f'width="{round(high - low, 1)}" height="{ROW_HEIGHT - 8}" '
                        f'fill="#9ecae1"/>')
        body.append(f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 4}" width="{low}" '
                    f'height="{ROW_HEIGHT - 8}" fill="#3182bd"/>')
        body.append(f'<text x="{LABEL_WIDTH + PLOT_WIDTH + 6}" y="{y + 15}" '
                    f'font-size="12">{escape(bar.shown)}</text>')
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    return _svg(width, max(ROW_HEIGHT, ROW_HEIGHT * len(bars)), title, body)


def time_series(points: Sequence[Bar], title: str) -> str:
    """A line through the lower bounds, with a vertical band to each uncertain upper bound."""
    top = _scale_top(points)
    base = SERIES_HEIGHT - 30
    body, line = [], []
    for k, point in enumerate(points):
        x = 30 + k * POINT_SPACING
        y_low = base - _length(point.low, top, base - 20)
        y_high = 20 if point.high is None else base - _length(point.high, top, base - 20)
        line.append(f"{x},{y_low}")
        if y_high < y_low:
            body.append(f'<line class="uncertain" x1="{x}" y1="{y_low}" x2="{x}" '
                        f'y2="{y_high}" stroke="#9ecae1" stroke-width="6"/>')
        body.append(f'<circle cx="{x}" cy="{y_low}" r="3" fill="#3182bd"/>')
        body.append(f'<text x="{x}" y="{base + 16}" text-anchor="middle" '
                    f'font-size="11">{escape(point.label)}</text>')
        body.append(f'<text x="{x}" y="{min(y_high, y_low) - 6}" text-anchor="middle" '
                    f'font-size="11">{escape(point.shown)}</text>')
    if len(line) > 1:
        body.insert(0, f'<polyline points="{" ".join(line)}" fill="none" stroke="#3182bd" '
                       f'stroke-width="2"/>')
    width = max(120, 60 + POINT_SPACING * max(len(points) - 1, 0))
    return _svg(width, SERIES_HEIGHT, title, body)
