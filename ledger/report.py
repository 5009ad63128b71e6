"""A dispute's evidence as one self-contained HTML page, for an auditor to read or attach.

Everything is inline (CSS, an SVG timeline; no scripts, fonts or images fetched), so the file
opens the same anywhere, offline, years later. The timeline has one lane per rep: bars for the
periods he owned the lead (lighter bars: a duplicate lead of the same customer), and marks for
his claims, refusals, follow-ups and the conversion; dashed lines mark the dispute's opening
and ruling.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from ledger.values import format_time, parse_time

WIDTH, LABEL, LANE, TOP, RIGHT = 1000, 130, 46, 44, 20
COLORS = {"own": "#4c78a8", "dup": "#a0b9d6", "ok": "#2e7d32", "refused": "#c62828", "follow": "#6a1b9a",
          "deal": "#ef8f00", "dispute": "#555"}


def write_report(result: dict[str, Any], path: str) -> None:
    """Write `dispute_show`'s result as an HTML report to `path`."""
    Path(path).write_text(render(result), encoding="utf-8")


def render(r: dict[str, Any]) -> str:
    e = r["evidence"]
    title = f"Dispute {r['dispute']} on lead {r['lead']}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(title)} <span class='status {r['status']}'>{escape(r['status'])}</span></h1>",
        _pairs(_header(r)),
        "<h2>Ownership timeline</h2>", timeline(r), _legend(),
        "<h2>By rep</h2>",
        _table(e["by_rep"], [("rep", "Rep"), ("first_attempt", "First attempt"), ("first_held", "First held"),
                             ("times_held", "Times held"), ("refused", "Refused"), ("follow_ups", "Follow-ups"),
                             ("follow_ups_on_duplicates", "On duplicates"), ("first_follow_up", "First follow-up"),
                             ("last_follow_up", "Last follow-up")]),
        "<h2>Ownership intervals</h2>",
        _table([{**i, "started": i["started_by"] + (f" ({i['dispute']})" if i.get("dispute") else ""),
                 "deal": f"{i['deal'] or 'converted'} at {i['converted_at']} (#{i['converted_position']})"
                 if i.get("converted_at") else None} for i in e["ownership"]],
               [("owner", "Owner"), ("from", "From"), ("to", "To"), ("start_position", "Start #"),
                ("started", "Started by"), ("end_position", "End #"), ("ended_by", "Ended by"),
                ("deal", "Converted")], empty="Never owned."),
        "<h2>Claim and assignment attempts</h2>",
        _table([{**a, "result": "accepted" if a["accepted"] else f"refused: {a['reason']}",
                 "detail": a["message"] or a["reason"]} for a in e["attempts"]],
               [("position", "#"), ("occurred_at", "Occurred"), ("recorded_at", "Recorded"),
                ("backdated", "Backdated"), ("type", "Event"), ("rep", "Rep"), ("actor", "By"),
                ("result", "Result"), ("owner_then", "Owner then"), ("owner_since_position", "Owner since #"),
                ("rules_version", "Rules"), ("detail", "Detail")],
               row_class=lambda a: "" if a["accepted"] else "refused"),
        "<h2>Follow-ups (this lead and its duplicates)</h2>",
        _table(e["follow_ups"], [("position", "#"), ("occurred_at", "Occurred"), ("recorded_at", "Recorded"),
                                 ("backdated", "Backdated"), ("lead", "Lead"), ("rep", "Rep"),
                                 ("channel", "Channel"), ("note", "Note")], empty="No follow-ups."),
        "<h2>Rule versions of the pool</h2>",
        _table(e["rules"], [("version", "Version"), ("since", "From"), ("until", "Until"),
                            ("claim_limit", "Claim limit"), ("daily_claim_limit", "Daily limit"),
                            ("idle_limit", "Idle limit"), ("hold_limit", "Hold limit"), ("cooldown", "Cooldown"),
                            ("warn_before", "Warn before"), ("used", "Decided here")]),
        "<h2>Duplicate matches</h2>",
        _table([{**d, "held_by": "; ".join(f"{i['owner']} {i['from']} – {i['to'] or 'now'}"
                                            for i in d["ownership"]) or None} for d in e["duplicates"]],
               [("lead", "Lead"), ("field", "Field"), ("value", "Value"), ("added_at", "Added"),
                ("status", "Status"), ("owner", "Owner"), ("pool", "Pool"), ("held_by", "Held by")],
               empty="No other lead shares this customer's phone, email or company."),
        "<h2>Dispute events</h2>",
        _table(e["dispute_events"], [("position", "#"), ("type", "Event"), ("occurred_at", "Occurred"),
                                     ("recorded_at", "Recorded"), ("actor", "By"), ("reason", "Reason"),
                                     ("outcome", "Outcome"), ("owner", "Owner"), ("rationale", "Rationale")]),
    ]
    if e["backdated"]:
        parts.append("<p class='note'>Backdated (recorded more than 5 minutes after their stated time): "
                     + ", ".join(f"#{p}" for p in e["backdated"]) + "</p>")
    parts.append("<footer>Positions (#) are global positions in the ledger's append-only, hash-chained log; "
                 "<code>leadledger verify</code> proves they are unaltered.</footer></body></html>")
    return "\n".join(parts)


def _header(r: dict[str, Any]) -> list[tuple[str, Any]]:
    now = r["lead_now"]
    return [
        ("Lead", r["lead"]), ("Customer", ", ".join(f"{k} {v}" for k, v in now["attributes"].items()) or None),
        ("Opened", f"{r['opened_at']} by {r['opened_by']} (event #{r['open_position']})"),
        ("Reason", r["reason"]), ("Owner when opened", r["owner_at_open"] or "none (pooled)"),
        ("Outcome", f"{r['outcome']} by {r['resolved_by']} at {r['resolved_at']} (event #{r['resolved_position']})"
         if r["outcome"] else "not yet resolved"),
        ("Awarded to", r["awarded_to"]), ("Rationale", r["rationale"]),
        ("Lead now", _where(now)),
    ]


def _where(now: dict[str, Any]) -> str:
    if now["owner"] is None:
        return f"unowned, in pool {now['pool']}"
    return f"{'converted, ' if now['status'] == 'converted' else ''}held by {now['owner']} (pool {now['pool']})"


# --- the SVG timeline -----------------------------------------------------------------------

def lanes_of(r: dict[str, Any]) -> list[str]:
    """The reps that get a lane, in order of first appearance in the evidence."""
    e = r["evidence"]
    seen: dict[str, datetime] = {}
    rows = [(i["owner"], i["from"]) for i in e["ownership"]] + [(a["rep"], a["occurred_at"]) for a in e["attempts"]]
    rows += [(f["rep"], f["occurred_at"]) for f in e["follow_ups"]]
    rows += [(i["owner"], i["from"]) for d in e["duplicates"] for i in d["ownership"]]
    rows += [(r["opened_by"], r["opened_at"])]
    for rep in e["involved"]:
        rows.append((rep, None))
    for rep, at in rows:
        when = parse_time(at) if at else datetime.max.replace(tzinfo=parse_time(r["opened_at"]).tzinfo)
        if rep not in seen or when < seen[rep]:
            seen[rep] = when
    return sorted(seen, key=lambda rep: (seen[rep], rep))


def timeline(r: dict[str, Any]) -> str:
    e = r["evidence"]
    lanes = lanes_of(r)
    times = [parse_time(t) for t in _all_times(r)]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    start_pad = span * 0.03
    span += 2 * start_pad
    plot = WIDTH - LABEL - RIGHT
    height = TOP + LANE * len(lanes) + 30

    def x(at: str | None) -> float:  # no time: still open, so to the right edge
        if at is None:
            return LABEL + plot
        return LABEL + ((parse_time(at) - start).total_seconds() + start_pad) / span * plot

    def y(rep: str) -> float:
        return TOP + LANE * lanes.index(rep)

    out = [f'<svg class="timeline" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="ownership timeline">']
    ticks = _ticks(start, end, 5)
    for n, tick in enumerate(ticks):
        tx = x(format_time(tick))
        out.append(f'<line class="tick" x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{height - 24}"/>')
        anchor = "end" if n == len(ticks) - 1 and n else "middle"
        out.append(f'<text class="axis" x="{tx:.1f}" y="{height - 8}" text-anchor="{anchor}">'
                   f"{escape(_short(tick))}</text>")
    for rep in lanes:
        out.extend(_lane(r, rep, y(rep), x, plot))
    for n, d in enumerate(e["dispute_events"]):
        dx, label_y = x(d["occurred_at"]), TOP - 14 - 11 * (n % 2)
        label = "dispute opened" if d["type"] == "DisputeOpened" else f"ruling: {d.get('outcome')}"
        tip = escape(f"#{d['position']} {d['type']} at {d['occurred_at']} by {d['actor']}")
        out.append(f'<g class="dispute-mark"><line x1="{dx:.1f}" y1="{label_y + 3}" x2="{dx:.1f}" y2="{height - 24}"/>'
                   + (f'<text x="{dx - 3:.1f}" y="{label_y}" text-anchor="end">' if dx > WIDTH - 160
                      else f'<text x="{dx + 3:.1f}" y="{label_y}">') + f"{escape(label)}</text><title>{tip}</title></g>")
    out.append("</svg>")
    return "\n".join(out)


def _lane(r: dict[str, Any], rep: str, ly: float, x: Callable[[str | None], float], plot: float) -> list[str]:
    """One rep's lane: his holdings (of this lead and its duplicates), attempts and follow-ups."""
    e = r["evidence"]
    out = []
    out.append(f'<g class="lane" data-rep="{escape(rep)}">')
    out.append(f'<rect class="lane-bg" x="{LABEL}" y="{ly}" width="{plot}" height="{LANE - 6}"/>')
    out.append(f'<text class="lane-label" x="{LABEL - 8}" y="{ly + LANE / 2}" text-anchor="end">'
               f"{escape(rep)}</text>")
    for d in e["duplicates"]:
        for i in d["ownership"]:
            if i["owner"] == rep:
                out.append(_bar(x(i["from"]), x(i["to"]), ly + 24, 10, "dup",
                                f"{rep} held duplicate lead {d['lead']} from {i['from']} to {i['to'] or 'now'}"))
    for i in e["ownership"]:
        if i["owner"] == rep:
            out.append(_bar(x(i["from"]), x(i["to"]), ly + 8, 16, "own",
                            f"{rep} owned {r['lead']} from {i['from']} (#{i['start_position']}, {i['started_by']})"
                            f" to {i['to'] or 'now'}" + (f" ({i['ended_by']} #{i['end_position']})"
                                                         if i["to"] else "")))
            if i.get("converted_at"):
                cx = x(i["converted_at"])
                tip = escape(f"converted by {rep} (deal {i['deal']}) at {i['converted_at']}")
                out.append(f'<rect class="mark deal" x="{cx - 6:.1f}" y="{ly + 10:.1f}" width="12" height="12">'
                           f"<title>{tip}</title></rect>")
    for a in e["attempts"]:
        if a["rep"] != rep:
            continue
        ax, my = x(a["occurred_at"]), ly + 16
        tip = escape(f"#{a['position']} {a['type']} at {a['occurred_at']}"
                     + ("" if a["accepted"] else f": {a['message'] or a['reason']}"))
        if a["accepted"]:
            out.append(f'<circle class="mark ok" cx="{ax:.1f}" cy="{my}" r="5"><title>{tip}</title></circle>')
        else:
            out.append(f'<path class="mark refused" d="M{ax - 5:.1f},{my - 5} l10,10 m0,-10 l-10,10">'
                       f"<title>{tip}</title></path>")
    for f in e["follow_ups"]:
        if f["rep"] != rep:
            continue
        fx, fy = x(f["occurred_at"]), ly + 33
        kind = "follow" if f["lead"] == r["lead"] else "follow dup-follow"
        tip = escape(f"#{f['position']} follow-up on {f['lead']} by {f['channel']} at {f['occurred_at']}: {f['note']}")
        out.append(f'<path class="mark {kind}" d="M{fx:.1f},{fy - 5} l5,5 l-5,5 l-5,-5 z"><title>{tip}</title></path>')
    out.append("</g>")
    return out


def _all_times(r: dict[str, Any]) -> list[str]:
    e = r["evidence"]
    times = [r["opened_at"]] + ([r["resolved_at"]] if r["resolved_at"] else [])
    for i in e["ownership"] + [i for d in e["duplicates"] for i in d["ownership"]]:
        times += [i["from"]] + ([i["to"]] if i["to"] else []) + ([i["converted_at"]] if i.get("converted_at") else [])
    times += [a["occurred_at"] for a in e["attempts"]] + [f["occurred_at"] for f in e["follow_ups"]]
    return times


def _bar(x1: float, x2: float, y: float, h: int, kind: str, tip: str) -> str:
    return (f'<rect class="bar {kind}" x="{x1:.1f}" y="{y:.1f}" width="{max(x2 - x1, 2):.1f}" height="{h}">'
            f"<title>{escape(tip)}</title></rect>")


def _ticks(start: datetime, end: datetime, count: int) -> list[datetime]:
    step = (end - start) / count if end > start else None
    return [start] if step is None else [start + step * n for n in range(count + 1)]


def _short(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def _legend() -> str:
    items = [("own", "owned this lead"), ("dup", "held a duplicate lead"), ("ok", "claim / assignment accepted"),
             ("refused", "attempt refused"), ("follow", "follow-up"), ("deal", "converted"),
             ("dispute", "dispute opened / ruled")]
    return "<p class='legend'>" + " ".join(
        f"<span><i style='background:{COLORS[k]}'></i>{escape(text)}</span>" for k, text in items) + "</p>"


# --- tables ---------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], empty: str = "None.",
           row_class: Any = None) -> str:
    if not rows:
        return f"<p class='empty'>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for _, h in columns)
    body = []
    for row in rows:
        cls = row_class(row) if row_class else ""
        body.append(f"<tr class='{cls}'>" + "".join(f"<td>{_cell(row.get(k))}</td>" for k, _ in columns) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pairs(pairs: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{_cell(v)}</dd>" for k, v in pairs if v not in (None, "")) \
        + "</dl>"


CSS = f"""
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei",
       "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; color: #222; margin: 24px auto;
       max-width: 1040px; padding: 0 12px; }}
h1 {{ font-size: 22px; margin: 0 0 12px; }} h2 {{ font-size: 16px; margin: 26px 0 8px;
       border-bottom: 1px solid #ddd; padding-bottom: 3px; }}
.status {{ font-size: 13px; padding: 2px 8px; border-radius: 10px; vertical-align: middle; }}
.status.open {{ background: #fff3cd; }} .status.resolved {{ background: #d8f0dc; }}
dl {{ display: grid; grid-template-columns: 170px 1fr; gap: 3px 12px; margin: 0; }}
dt {{ color: #666; }} dd {{ margin: 0; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12.5px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }} tr.refused td {{ background: #fdecea; }}
.timeline {{ display: block; max-width: 100%; height: auto; }}
.lane-bg {{ fill: #f7f7f9; }} .lane-label {{ font-size: 13px; font-weight: 600; dominant-baseline: middle; }}
.tick {{ stroke: #e2e2e2; }} .axis {{ font-size: 11px; fill: #666; }}
.bar.own {{ fill: {COLORS["own"]}; }} .bar.dup {{ fill: {COLORS["dup"]}; }}
.mark.ok {{ fill: {COLORS["ok"]}; stroke: #fff; stroke-width: 1.5; }}
.mark.refused {{ stroke: {COLORS["refused"]}; stroke-width: 2.5; fill: none; }}
.mark.follow {{ fill: {COLORS["follow"]}; }} .mark.dup-follow {{ fill: #fff; stroke: {COLORS["follow"]}; }}
.mark.deal {{ fill: {COLORS["deal"]}; stroke: #fff; }}
.dispute-mark line {{ stroke: {COLORS["dispute"]}; stroke-dasharray: 4 3; }}
.dispute-mark text {{ font-size: 11px; fill: {COLORS["dispute"]}; }}
.legend span {{ margin-right: 14px; font-size: 12px; white-space: nowrap; }}
.legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }}
.note, .empty {{ color: #555; }} footer {{ margin-top: 28px; color: #777; font-size: 12px; }}
@media print {{ body {{ margin: 0; }} }}
"""
