"""The IKZ dashboard (/ikz) and its JSON (GET /api/v1/ikz): the cities' figures side by side, per process.

Team leads and admins of any city see every city's *figures* — counts and medians from ``engine.ikz`` — and
nothing else: no case, no Aktenzeichen, no name. Charts are SVG drawn here on the server (titles, text
values, a table with the same numbers next to each), so the page needs no script.
"""

from flask import Blueprint, current_app, g, jsonify, render_template, request

from engine.ikz import PeriodError, figures

from .api import error, token_required
from .auth import role_required

bp = Blueprint("ikz", __name__)
ROLES = ("teamlead", "admin")
SERIES = (("received", "eingegangen", "#004b87"), ("open", "offen", "#5b7fa6"), ("overdue", "überfällig", "#a4000f"))


def rt():
    return current_app.extensions["ozgflow"]


@bp.get("/ikz")
@role_required(*ROLES)
def page():
    start, end = request.args.get("from"), request.args.get("to")
    try:
        data = figures(rt(), start, end)
        problem = None
    except PeriodError as exc:
        data, problem = figures(rt()), f"Zeitraum ungültig: {exc}"
    return render_template("ikz.html", ikz=data, problem=problem, charts=_charts(data),
                           duration=duration, german_date=german_date), (400 if problem else 200)


@bp.get("/api/v1/ikz")
@token_required
def api():
    if g.user.role not in ROLES:
        return error(403, "the IKZ figures are for team leads and admins")
    try:
        return jsonify(figures(rt(), request.args.get("from"), request.args.get("to")))
    except PeriodError as exc:
        return error(400, str(exc))


def german_date(text):
    year, month, day = text.split("-")
    return f"{day}.{month}.{year}"


def duration(seconds):
    """A median time for people: minutes, hours or days, German decimal comma; "–" when there is none."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds} Sek."
    if seconds < 3600:
        return f"{round(seconds / 60)} Min."
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} Std.".replace(".", ",", 1)
    return f"{seconds / 86400:.1f} Tage".replace(".", ",", 1)


def _charts(data):
    """Per process (and for all processes, key None): a counts chart and a processing-time chart."""
    charts = {}
    keys = [(None, "alle Prozesse")] + [(p["process_id"], p["name"]) for p in data["processes"]]
    for index, (key, name) in enumerate(keys):
        rows = [(c["name"], c["totals"] if key is None else _row(c, key)) for c in data["cities"]]
        charts[key] = {
            "counts": bars(f"c{index}", f"Vorgänge je Kommune – {name}",
                           "Eingegangen im Zeitraum, offen und überfällig heute.",
                           [(city, [(label, r[k], colour, str(r[k])) for k, label, colour in SERIES])
                            for city, r in rows]),
            "times": bars(f"t{index}", f"Mittlere Bearbeitungsdauer (Median) – {name}",
                          "Vom Eingang bis zum Abschluss, Vorgänge, die im Zeitraum abgeschlossen wurden.",
                          [(city, [("Median", r["median_processing_seconds"] or 0, "#1d6b2f",
                                    duration(r["median_processing_seconds"]))]) for city, r in rows]),
        }
    return charts


def _row(city, process_id):
    return next(r for r in city["processes"] if r["process_id"] == process_id)


def bars(chart_id, title, desc, groups, label_width=230, bar_area=420, bar_height=16, gap=12):
    """Geometry of a horizontal bar chart: ``groups`` = [(label, [(series, value, colour, text)])]."""
    legend = [{"label": s, "colour": c} for s, _v, c, _t in groups[0][1]] if groups and len(groups[0][1]) > 1 else []
    top = 30 if legend else 8
    x = label_width
    for item in legend:  # a row of coloured squares with their names above the bars
        item.update(x=x, text_x=x + 16)
        x += 16 + 9 * len(item["label"]) + 18
    peak_value = max([v for _label, series in groups for _s, v, _c, _t in series] + [0])
    peak = peak_value or 1
    rows, y = [], top
    for label, series in groups:
        first, bars_ = y, []
        for s_label, value, colour, text in series:
            width = round(bar_area * value / peak, 1)
            bars_.append({"series": s_label, "y": y, "width": width, "colour": colour, "text": text,
                          "text_x": label_width + width + 6, "text_y": y + bar_height - 3})
            y += bar_height + 2
        rows.append({"label": label, "label_y": first + (y - first) / 2 + 2, "bars": bars_})
        y += gap
    return {"id": chart_id, "title": title, "desc": desc, "rows": rows, "x0": label_width, "bar_height": bar_height,
            "width": label_width + bar_area + 90, "height": y - gap + 8, "legend": legend,
            "empty": peak_value == 0}
