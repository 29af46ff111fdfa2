"""Small SVG charts rendered on the server: no script, no outside requests, readable without colour."""
from __future__ import annotations

from markupsafe import Markup, escape

BAR = 18
GAP = 6
LABEL_WIDTH = 170
WIDTH = 560
COLOURS = ("#1b5e91", "#c0392b", "#2e7d32", "#8e44ad", "#b9770e", "#555555")


def bars(rows: list[tuple[str, int]], *, title: str) -> Markup:
    """A horizontal bar chart of (label, value) rows, with each value written beside its bar."""
    top = max([value for _, value in rows] + [1])
    height = len(rows) * (BAR + GAP) + GAP
    span = WIDTH - LABEL_WIDTH - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">'
             f'<title>{escape(title)}</title>']
    for n, (label, value) in enumerate(rows):
        y = GAP + n * (BAR + GAP)
        length = round(span * value / top) if value else 0
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR - 5}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR}" '
                     f'fill="{COLOURS[n % len(COLOURS)]}"/>'
                     f'<text x="{LABEL_WIDTH + length + 4}" y="{y + BAR - 5}">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(labels: list[str], series: dict[str, list[int]], *, title: str, height: int = 180) -> Markup:
    """Grouped columns over *labels* (days, hours), one colour per series, with a legend."""
    top = max([v for values in series.values() for v in values] + [1])
    groups = max(len(labels), 1)
    plot_left, plot_bottom = 40, height - 30
    group_width = (WIDTH - plot_left - 10) / groups
    bar_width = max(1.0, group_width / (len(series) + 1))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height + 20}" '
             f'viewBox="0 0 {WIDTH} {height + 20}" font-family="sans-serif" font-size="10">'
             f'<title>{escape(title)}</title>',
             f'<text x="{plot_left - 4}" y="12" text-anchor="end">{top}</text>',
             f'<line x1="{plot_left}" y1="{plot_bottom}" x2="{WIDTH - 10}" y2="{plot_bottom}" stroke="#333"/>']
    scale = (plot_bottom - 10) / top
    for s, (name, values) in enumerate(series.items()):
        colour = COLOURS[s % len(COLOURS)]
        for g, value in enumerate(values):
            h = value * scale
            x = plot_left + g * group_width + s * bar_width
            parts.append(f'<rect x="{x:.1f}" y="{plot_bottom - h:.1f}" width="{bar_width:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(labels[g])} {escape(name)}: {value}</title></rect>')
        parts.append(f'<rect x="{plot_left + s * 110}" y="{height + 6}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{plot_left + s * 110 + 14}" y="{height + 15}">{escape(name)}</text>')
    step = max(1, groups // 12)
    for g in range(0, groups, step):
        parts.append(f'<text x="{plot_left + g * group_width:.1f}" y="{plot_bottom + 12}">{escape(labels[g])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
