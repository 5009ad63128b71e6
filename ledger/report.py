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

from ledger import refusals
from ledger.i18n import N_, _, gettext
from ledger.period_html import page_language
from ledger.values import format_time, parse_time

WIDTH, LABEL, LANE, TOP, RIGHT = 1000, 130, 46, 44, 20
COLORS = {"own": "#4c78a8", "dup": "#a0b9d6", "ok": "#2e7d32", "refused": "#c62828", "follow": "#6a1b9a",
          "deal": "#ef8f00", "dispute": "#555"}


def write_report(result: dict[str, Any], path: str) -> None:
    """Write `dispute_show`'s result as an HTML report to `path`."""
    Path(path).write_text(render(result), encoding="utf-8")


def render(r: dict[str, Any]) -> str:
    e = r["evidence"]
    title = _("Dispute {dispute} on lead {lead}", dispute=r["dispute"], lead=r["lead"])
    parts = [
        "<!DOCTYPE html>", f'<html lang="{page_language()}"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(title)} <span class='status {r['status']}'>{escape(gettext(r['status']))}</span></h1>",
        _pairs(_header(r)),
        f"<h2>{escape(_('Ownership timeline'))}</h2>", timeline(r), _legend(),
        f"<h2>{escape(_('By rep'))}</h2>",
        _table(e["by_rep"], [("rep", N_("Rep")), ("first_attempt", N_("First attempt")), ("first_held", N_("First held")),
                             ("times_held", N_("Times held")), ("refused", N_("Refused")), ("follow_ups", N_("Follow-ups")),
                             ("follow_ups_on_duplicates", N_("On duplicates")), ("first_follow_up", N_("First follow-up")),
                             ("last_follow_up", N_("Last follow-up"))]),
        f"<h2>{escape(_('Ownership intervals'))}</h2>",
        _table([{**i, "started": i["started_by"] + (f" ({i['dispute']})" if i.get("dispute") else ""),
                 "deal": _("{deal} at {at} (#{position})", deal=i["deal"] or _("converted"), at=i["converted_at"],
                           position=i["converted_position"])
                 if i.get("converted_at") else None} for i in e["ownership"]],
               [("owner", N_("Owner")), ("from", N_("From")), ("to", N_("To")), ("start_position", N_("Start #")),
                ("started", N_("Started by")), ("end_position", N_("End #")), ("ended_by", N_("Ended by")),
                ("deal", N_("Converted"))], empty=N_("Never owned.")),
        f"<h2>{escape(_('Claim and assignment attempts'))}</h2>",
        _table([{**a, "result": _("accepted") if a["accepted"] else _("refused: {reason}", reason=a["reason"]),
                 "detail": a["message"] or refusals.reword(a["reason"])} for a in e["attempts"]],
               [("position", N_("#")), ("occurred_at", N_("Occurred")), ("recorded_at", N_("Recorded")),
                ("backdated", N_("Backdated")), ("type", N_("Event")), ("rep", N_("Rep")), ("actor", N_("By")),
                ("result", N_("Result")), ("owner_then", N_("Owner then")), ("owner_since_position", N_("Owner since #")),
                ("rules_version", N_("Rules")), ("detail", N_("Detail"))],
               row_class=lambda a: "" if a["accepted"] else "refused"),
        f"<h2>{escape(_('Follow-ups (this lead and its duplicates)'))}</h2>",
        _table([{**f, "note": _or_erased(f["note"])} for f in e["follow_ups"]], [("position", N_("#")), ("occurred_at", N_("Occurred")), ("recorded_at", N_("Recorded")),
                                 ("backdated", N_("Backdated")), ("lead", N_("Lead")), ("rep", N_("Rep")),
                                 ("channel", N_("Channel")), ("note", N_("Note"))], empty=N_("No follow-ups.")),
        f"<h2>{escape(_('Rule versions of the pool'))}</h2>",
        _table(e["rules"], [("version", N_("Version")), ("since", N_("From")), ("until", N_("Until")),
                            ("claim_limit", N_("Claim limit")), ("daily_claim_limit", N_("Daily limit")),
                            ("idle_limit", N_("Idle limit")), ("hold_limit", N_("Hold limit")), ("cooldown", N_("Cooldown")),
                            ("warn_before", N_("Warn before")), ("used", N_("Decided here"))]),
        f"<h2>{escape(_('Duplicate matches'))}</h2>",
        _table([{**d, "value": _or_erased(d["value"]), "held_by": "; ".join(f"{i['owner']} {i['from']} – {i['to'] or _('now')}"
                                            for i in d["ownership"]) or None} for d in e["duplicates"]],
               [("lead", N_("Lead")), ("field", N_("Field")), ("value", N_("Value")), ("added_at", N_("Added")),
                ("status", N_("Status")), ("owner", N_("Owner")), ("pool", N_("Pool")), ("held_by", N_("Held by"))],
               empty=N_("No other lead shares this customer's phone, email or company.")),
        f"<h2>{escape(_('Dispute events'))}</h2>",
        _table(_worded(e["dispute_events"]), [("position", N_("#")), ("type", N_("Event")), ("occurred_at", N_("Occurred")),
                                     ("recorded_at", N_("Recorded")), ("actor", N_("By")), ("reason", N_("Reason")),
                                     ("outcome", N_("Outcome")), ("owner", N_("Owner")), ("rationale", N_("Rationale"))]),
    ]
    if e["backdated"]:
        positions = ", ".join(f"#{p}" for p in e["backdated"])
        parts.append("<p class='note'>" + escape(_("Backdated (recorded more than 5 minutes after their stated "
                                                   "time): {positions}", positions=positions)) + "</p>")
    footer = gettext("Positions (#) are global positions in the ledger's append-only, hash-chained log; "
                     "{command} proves they are unaltered.")  # formatted after escaping: {command} is markup
    parts.append(f"<footer>{escape(footer).format(command='<code>leadledger verify</code>')}</footer></body></html>")
    return "\n".join(parts)


def _header(r: dict[str, Any]) -> list[tuple[str, Any]]:
    now = r["lead_now"]
    return [
        (_("Lead"), r["lead"]),
        (_("Customer"), ", ".join(f"{gettext(k)} {_or_erased(v)}" for k, v in now["attributes"].items()) or None),
        (_("Personal data"), _("erased: contact, phone, email and follow-up notes can no longer be read")
         if now.get("erased") else None),
        (_("Opened"), _("{at} by {actor} (event #{position})", at=r["opened_at"], actor=r["opened_by"],
                        position=r["open_position"])),
        (_("Reason"), r["reason"]), (_("Owner when opened"), r["owner_at_open"] or _("none (pooled)")),
        (_("Outcome"), _("{outcome} by {actor} at {at} (event #{position})", outcome=gettext(r["outcome"]),
                         actor=r["resolved_by"], at=r["resolved_at"], position=r["resolved_position"])
         if r["outcome"] else _("not yet resolved")),
        (_("Awarded to"), r["awarded_to"]), (_("Rationale"), r["rationale"]),
        (_("Lead now"), _where(now)),
    ]


def _or_erased(value: Any) -> Any:
    """A value as a person reads it: one an erasure took (null in JSON) is said to be so."""
    return _("(erased)") if value is None else value


def _where(now: dict[str, Any]) -> str:
    if now["owner"] is None:
        return _("unowned, in pool {pool}", pool=now["pool"])
    if now["status"] == "converted":
        return _("converted, held by {owner} (pool {pool})", owner=now["owner"], pool=now["pool"])
    return _("held by {owner} (pool {pool})", owner=now["owner"], pool=now["pool"])


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
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(_("ownership timeline"))}">']
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
        label = _("dispute opened") if d["type"] == "DisputeOpened" else _("ruling: {outcome}",
                                                                             outcome=gettext(d["outcome"]) if d.get("outcome") else "")
        tip = escape(_("#{position} {event} at {at} by {actor}", position=d["position"], event=d["type"],
                       at=d["occurred_at"], actor=d["actor"]))
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
                tip = _("{rep} held duplicate lead {lead} from {start} to {end}", rep=rep, lead=d["lead"],
                        start=i["from"], end=i["to"]) if i["to"] else \
                    _("{rep} holds duplicate lead {lead} from {start} to now", rep=rep, lead=d["lead"], start=i["from"])
                out.append(_bar(x(i["from"]), x(i["to"]), ly + 24, 10, "dup", tip))
    for i in e["ownership"]:
        if i["owner"] == rep:
            held = {"rep": rep, "lead": r["lead"], "start": i["from"], "first": i["start_position"],
                    "started_by": i["started_by"], "end": i["to"], "ended_by": i["ended_by"], "last": i["end_position"]}
            out.append(_bar(x(i["from"]), x(i["to"]), ly + 8, 16, "own", _(
                "{rep} owned {lead} from {start} (#{first}, {started_by}) to {end} ({ended_by} #{last})", **held)
                if i["to"] else _("{rep} owns {lead} from {start} (#{first}, {started_by}) to now", **held)))
            if i.get("converted_at"):
                cx = x(i["converted_at"])
                tip = escape(_("converted by {rep} (deal {deal}) at {at}", rep=rep, deal=i["deal"], at=i["converted_at"]))
                out.append(f'<rect class="mark deal" x="{cx - 6:.1f}" y="{ly + 10:.1f}" width="12" height="12">'
                           f"<title>{tip}</title></rect>")
    for a in e["attempts"]:
        if a["rep"] != rep:
            continue
        ax, my = x(a["occurred_at"]), ly + 16
        tip = escape(_("#{position} {event} at {at}", position=a["position"], event=a["type"], at=a["occurred_at"])
                     if a["accepted"] else _("#{position} {event} at {at}: {refusal}", position=a["position"],
                                             event=a["type"], at=a["occurred_at"], refusal=a["message"] or a["reason"]))
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
        tip = escape(_("#{position} follow-up on {lead} by {channel} at {at}: {note}", position=f["position"],
                       lead=f["lead"], channel=gettext(f["channel"]), at=f["occurred_at"], note=_or_erased(f["note"])))
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
    items = [("own", _("owned this lead")), ("dup", _("held a duplicate lead")),
             ("ok", _("claim / assignment accepted")), ("refused", _("attempt refused")), ("follow", _("follow-up")),
             ("deal", _("converted")), ("dispute", _("dispute opened / ruled"))]
    return "<p class='legend'>" + " ".join(
        f"<span><i style='background:{COLORS[k]}'></i>{escape(text)}</span>" for k, text in items) + "</p>"


# --- tables ---------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return escape(str(value))


def _worded(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dispute events as the page shows them: outcomes, and reasons the ledger gave (stored in
    English), in the reader's language."""
    return [{**d, "outcome": d.get("outcome") and gettext(d["outcome"]),
             "reason": refusals.reword(d.get("reason"))} for d in events]


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], empty: str = N_("None."),
           row_class: Any = None) -> str:
    """Headings and `empty` are marked messages (`N_`), translated here."""
    if not rows:
        return f"<p class='empty'>{escape(gettext(empty))}</p>"
    head = "".join(f"<th>{escape(gettext(h))}</th>" for _key, h in columns)
    body = []
    for row in rows:
        cls = row_class(row) if row_class else ""
        body.append(f"<tr class='{cls}'>" + "".join(f"<td>{_cell(row.get(k))}</td>" for k, _head in columns) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pairs(pairs: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{_cell(v)}</dd>" for k, v in pairs if v not in (None, "")) \
        + "</dl>"


CSS = f"""
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Source Han Sans SC",
       "PingFang SC", "Microsoft YaHei", sans-serif; color: #222; margin: 24px auto;
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
