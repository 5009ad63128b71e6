"""The period report as one self-contained HTML page (`report --html FILE`).

Everything is inline, as in the dispute report (`ledger/report.py`): CSS, and one SVG chart
per pool (a line of its size over the period, one point per change) and per rep (a bar per
outcome); no script, font or image is fetched. Each chart has the numbers in a table beside it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from ledger.i18n import N_, _, gettext, language
from ledger.values import parse_time

W, H, PAD, LEFT = 480, 170, 22, 34
OUTCOMES = ("claims", "assigned_in", "reassigned_in", "reassigned_out", "released", "recycled", "converted",
            "follow_ups")
# An outcome's name in a table row, and its short label under a bar.
NAMES = {"claims": N_("claims"), "assigned_in": N_("assigned in"), "reassigned_in": N_("reassigned in"),
         "reassigned_out": N_("reassigned out"), "released": N_("released"), "recycled": N_("recycled"),
         "converted": N_("converted"), "follow_ups": N_("follow ups")}
LABELS = {"claims": N_("claims"), "assigned_in": N_("assigned"), "reassigned_in": N_("reas. in"),
          "reassigned_out": N_("reas. out"), "released": N_("released"), "recycled": N_("recycled"),
          "converted": N_("converted"), "follow_ups": N_("follow-ups")}
COLORS = {"claims": "#4c78a8", "assigned_in": "#72b7b2", "reassigned_in": "#54a24b", "reassigned_out": "#eeca3b",
          "released": "#f58518", "recycled": "#e45756", "converted": "#2e7d32", "follow_ups": "#b279a2"}


def write_page(result: dict[str, Any], path: str) -> None:
    """Write `report`'s result as an HTML page to `path`."""
    Path(path).write_text(render(result), encoding="utf-8")


def render(r: dict[str, Any]) -> str:
    title = _("Period report {start} to {end}", start=r["from"], end=r["to"])
    parts = ["<!DOCTYPE html>", f'<html lang="{page_language()}"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>{escape(title)}</h1>", f"<h2>{escape(_('Pools'))}</h2>"]
    for pool in r["pools"]:
        rows = [(_("pooled at start"), pool["pooled_at_start"]), (_("pooled at end"), pool["pooled_at_end"]),
                (_("added"), pool["added"]), (_("claimed"), pool["claimed"]), (_("returned"), pool["returned"])]
        parts.append(_section(_("Pool {pool}", pool=pool["pool"]), pool_chart(pool, r["from"], r["to"]), rows,
                              "pool"))
    if not r["pools"]:
        parts.append(f"<p>{escape(_('No pools.'))}</p>")
    parts.append(f"<h2>{escape(_('Reps'))}</h2>")
    for rep in r["reps"]:
        rows = [(_("held at start"), rep["held_at_start"]), (_("held at end"), rep["held_at_end"]),
                *((gettext(NAMES[k]), _outcome(rep, k)) for k in OUTCOMES),
                (_("refused"), ", ".join(f"{c} {n}" for c, n in rep["refused"].items()) or 0),
                (_("backdated"), rep["backdated"])]
        parts.append(_section(_("Rep {rep}", rep=rep["rep"]), rep_chart(rep), rows, "rep"))
    if not r["reps"]:
        parts.append(f"<p>{escape(_('No rep owned or did anything in the period.'))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def page_language() -> str:
    """The page's `lang`: zh-CN under Chinese, so that browsers pick a Simplified Chinese font."""
    return "zh-CN" if language() == "zh" else "en"


def _outcome(rep: dict[str, Any], key: str) -> int:
    value = rep[key]
    return sum(value.values()) if isinstance(value, dict) else value


def _section(title: str, chart: str, rows: list[tuple[str, Any]], kind: str) -> str:
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return (f"<section class='{kind}'><h3>{escape(title)}</h3><div class='pair'>{chart}"
            f"<table>{cells}</table></div></section>")


def pool_chart(pool: dict[str, Any], start: str, end: str) -> str:
    """A step line of the pool's size: one point per size it had (the start, each change)."""
    t0, t1 = parse_time(start).timestamp(), parse_time(end).timestamp()
    sizes = pool["sizes"]
    top = max([s["size"] for s in sizes] + [1])

    def x(at: str) -> float:
        return LEFT + (parse_time(at).timestamp() - t0) / (t1 - t0) * (W - LEFT - PAD)

    def y(size: int) -> float:
        return H - PAD - size / top * (H - 2 * PAD)

    points = [(x(s["at"]), y(s["size"])) for s in sizes]
    line = []
    for i, (px, py) in enumerate(points):
        if i:
            line.append(f"{px:.1f},{points[i - 1][1]:.1f}")
        line.append(f"{px:.1f},{py:.1f}")
    line.append(f"{W - PAD:.1f},{points[-1][1]:.1f}")
    dots = "".join(f"<circle class='point' cx='{px:.1f}' cy='{py:.1f}' r='3'><title>{escape(s['at'])}: "
                   f"{s['size']}</title></circle>" for (px, py), s in zip(points, sizes, strict=True))
    return (f"<svg class='chart' width='{W}' height='{H}' viewBox='0 0 {W} {H}' role='img' "
            f"aria-label='{escape(_('size of pool {pool}', pool=pool['pool']), quote=True)}'>{_axes(top)}"
            f"<polyline fill='none' stroke='#4c78a8' stroke-width='2' points='{' '.join(line)}'/>{dots}</svg>")


def rep_chart(rep: dict[str, Any]) -> str:
    """One bar per outcome of the rep in the period."""
    values = [(k, _outcome(rep, k)) for k in OUTCOMES]
    top = max([v for _key, v in values] + [1])
    step = (W - LEFT - PAD) / len(values)
    bars = []
    for i, (k, v) in enumerate(values):
        height = v / top * (H - 2 * PAD - 14)
        bx, by = LEFT + i * step + 3, H - PAD - height
        bars.append(f"<rect class='bar' x='{bx:.1f}' y='{by:.1f}' width='{step - 6:.1f}' height='{height:.1f}' "
                    f"fill='{COLORS[k]}'><title>{escape(gettext(LABELS[k]))}: {v}</title></rect>"
                    f"<text x='{bx + (step - 6) / 2:.1f}' y='{H - 6}' text-anchor='middle'>{escape(gettext(LABELS[k]))}</text>")
    return (f"<svg class='chart' width='{W}' height='{H}' viewBox='0 0 {W} {H}' role='img' "
            f"aria-label='{escape(_('outcomes of {rep}', rep=rep['rep']), quote=True)}'>{_axes(top)}{''.join(bars)}</svg>")


def _axes(top: int) -> str:
    return (f"<line x1='{LEFT}' y1='{H - PAD}' x2='{W - PAD}' y2='{H - PAD}' stroke='#999'/>"
            f"<line x1='{LEFT}' y1='{PAD}' x2='{LEFT}' y2='{H - PAD}' stroke='#999'/>"
            f"<text x='{LEFT - 4}' y='{PAD + 4}' text-anchor='end'>{top}</text>"
            f"<text x='{LEFT - 4}' y='{H - PAD}' text-anchor='end'>0</text>")


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Source Han Sans SC",
       "PingFang SC", "Microsoft YaHei", sans-serif; color: #222; margin: 24px auto;
       max-width: 1040px; padding: 0 12px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 16px; margin: 26px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 3px; } h3 { font-size: 14px; margin: 14px 0 6px; }
.pair { display: flex; gap: 18px; align-items: flex-start; flex-wrap: wrap; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; font-weight: normal; color: #555; }
svg.chart { background: #fafafa; border: 1px solid #eee; }
svg text { font-size: 10px; fill: #555; }
"""
