"""Bar charts as numbers for an SVG template: no JavaScript, and the same data goes in a table."""
import math
import re

WIDTH, HEIGHT = 600, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 32  # room for the value axis and the labels
MAX_LABELS = 12


def nice_step(top, ticks=4):
    """A round step (1, 2 or 5 times a power of ten) so that `ticks` steps reach `top`."""
    if top <= 0:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def bar_chart(points, value_label=str, tick_label=None, whole=False):
    """Geometry of a bar chart of [(label, value)]: bars, value-axis ticks and which labels to show.

    value_label formats a bar's value (its tooltip), tick_label a tick of the value axis;
    whole keeps the ticks on whole numbers (for counts).
    """
    tick_label = tick_label or value_label
    values = [value for _, value in points]
    step = nice_step(max(values, default=0))
    step = max(step, 1) if whole else step
    top = max(step, math.ceil(max(values, default=0) / step) * step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    every = max(1, math.ceil(len(points) / MAX_LABELS))
    bars = []
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top
        bars.append({
            "x": round(LEFT + i * slot + slot * 0.1, 2), "width": round(max(slot * 0.8, 1), 2),
            "y": round(TOP + plot_h - h, 2), "height": round(h, 2), "label": label,
            "value": value_label(value), "center": round(LEFT + i * slot + slot / 2, 2),
            "show_label": i % every == 0,
            # Dates are labelled without their year; the table below has them whole.
            "short": label[5:] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label) else label,
        })
    ticks = [{"y": round(TOP + plot_h - plot_h * i * step / top, 2), "label": tick_label(round(i * step, 6))}
             for i in range(round(top / step) + 1)]
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "baseline": TOP + plot_h, "label_y": TOP + plot_h + 16, "bars": bars, "ticks": ticks}
