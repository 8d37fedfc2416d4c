"""GET /threatnet/status: a read-only HTML page for people who would rather look than
read: the current threats (newest first; ``?q=`` keeps those whose address, comment,
reporter or channel contains it), threats kept per minute over the last hour as an SVG
plot, the agents and their report counts, and the responders' health.

One self-contained document: inline CSS and SVG, no script, no external asset; the
Content-Security-Policy it is served with forbids loading anything else. Everything
shown is escaped: threat comments and nicks are whatever agents and attackers chose.
"""
from __future__ import annotations

import html
import math
import time
from typing import TYPE_CHECKING

from . import metrics
from .responders import health

if TYPE_CHECKING:
    from .plugin import StatusPage

ROWS_MAX = 500  # threats listed; the rest are counted
# No script, no external anything; inline styles only; the filter form submits here.
HEADERS = [("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
           ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
HTML = "text/html; charset=utf-8"
BAR = "#d9480f"  # the plot's bars (the screenshot test looks for this colour)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f4f5f7;color:#1f2328}
header{background:#1f2933;color:#fff;padding:14px 24px;display:flex;align-items:baseline;
gap:16px;flex-wrap:wrap}
header h1{font-size:20px;margin:0}header span{color:#cbd2d9;font-size:13px}
main{padding:16px 24px;display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px}
section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:12px 16px;
overflow-x:auto}
section.wide{grid-column:1/-1}
.side{display:flex;flex-direction:column;gap:16px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{font-size:12px;color:#57606a;text-transform:uppercase;letter-spacing:.03em}
td.ip{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.chan{white-space:nowrap}
td.comment{word-break:break-word}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.warn{color:#9a6700;font-weight:600}.muted{color:#57606a}
form{display:flex;gap:8px;margin:0 0 8px}
input[type=search]{flex:1;padding:5px 8px;border:1px solid #d0d7de;border-radius:6px;font:inherit}
button{padding:5px 12px;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa;font:inherit}
svg text{font:12px system-ui,sans-serif;fill:#57606a}
"""


def _e(value: object) -> str:
    """Escaped for HTML text and attribute values (quotes too)."""
    return html.escape(str(value), quote=True)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def matches(query: str, *fields: object) -> bool:
    """Whether any of ``fields`` contains ``query`` (case-insensitive; empty: all do)."""
    q = query.casefold()
    return not q or any(q in str(f).casefold() for f in fields if f is not None)


def plot(series: list[int], width: int = 1200, height: int = 190) -> str:
    """An SVG bar chart of per-minute counts, oldest first, the current minute last."""
    left, bottom, top = 36, 22, 10
    inner_w, inner_h = width - left - 8, height - bottom - top
    peak = max(series, default=0)
    scale = max(1, peak)
    step = inner_w / max(1, len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} '
             f'{height}" role="img" aria-label="threats kept per minute, last hour">']
    for frac in (0, 0.5, 1):  # grid lines with their values
        y = top + inner_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#eaeef2"/><text x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{scale * frac:g}</text>')
    for i, n in enumerate(series):
        if n:
            h = max(1.5, inner_h * n / scale)
            parts.append(f'<rect x="{left + i * step + 1:.1f}" y="{top + inner_h - h:.1f}" '
                         f'width="{max(1.0, step - 2):.1f}" height="{h:.1f}" fill="{BAR}">'
                         f'<title>{_e(n)} threats, {len(series) - 1 - i} min ago</title></rect>')
    half = len(series) // 2
    for i, label in ((0, f"{len(series)} min ago"), (half, f"{half} min ago"),
                     (len(series) - 1, "now")):
        anchor = "start" if i == 0 else "end" if i == len(series) - 1 else "middle"
        x = left + i * step + (step if anchor == "end" else step / 2 if anchor == "middle" else 0)
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">'
                     f'{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(columns: str, rows: list[str], empty: str) -> str:
    """A table: ``columns`` (space-separated, "_" for a space), then ``rows`` (markup)."""
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in columns.split())
    body = "".join(rows) or f'<tr><td colspan="{len(columns.split())}" class="muted">' \
                            f'{_e(empty)}</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(page: StatusPage, query: str = "") -> bytes:
    """The whole page for ``page``, the threats filtered by ``query``."""
    now = page.now
    threats = [f for f in page.threats if matches(
        query, f.entry.ip, f.entry.comment, f.entry.nick, f.entry.account, f.channel,
        f.network)]
    shown = threats[:ROWS_MAX]
    rows = [
        f'<tr><td class="num">{_e(_age(now - f.entry.first_seen))}</td>'
        f'<td class="ip">{_e(f.entry.ip)}</td><td class="comment">{_e(f.entry.comment)}</td>'
        f'<td>{_e(f.entry.nick or "?")}'
        f'{" <span class=muted>(" + _e(f.entry.account) + ")</span>" if f.entry.account else ""}'
        f'</td><td class="chan">{_e(f.channel)} <span class="muted">{_e(f.network)}</span></td>'
        f'<td class="num">{_e(_age(f.expires_at - now))}</td></tr>' for f in shown]
    more = (f'<p class="muted">and {len(threats) - ROWS_MAX} more</p>'
            if len(threats) > ROWS_MAX else "")
    listed = f"{len(threats)} of {len(page.threats)}" if query else str(len(page.threats))
    agents = [f'<tr><td>{_e(name)}</td><td class="num">{current}</td>'
              f'<td class="num">{kept}</td></tr>' for name, current, kept in page.agents]
    responders = []
    for c in page.channels:
        for r in c.responders:
            css = "bad" if r.failures else "warn" if r.pending else "ok"
            state = health(r)
            responders.append(f'<tr><td>{_e(c.channel)}</td><td>{_e(r.name)}</td>'
                          f'<td class="num">{r.threats}</td><td class="num">{r.errors}</td>'
                          f'<td class="{css}">{_e(state)}</td></tr>')
        for name, reason in c.problems:
            responders.append(f'<tr><td>{_e(c.channel)}</td><td>{_e(name)}</td><td></td><td></td>'
                          f'<td class="bad">not started: {_e(reason)}</td></tr>')
    channels = ", ".join(
        f'{_e(c.channel)} <span class="muted">({_e(c.network)}, '
        f'{"synced" if not c.quiet_left else "quiet " + str(math.ceil(c.quiet_left)) + " s"}, '
        f'block {_e(f"{c.block:g}")} s)</span>' for c in page.channels) or "none"
    total = sum(page.per_minute)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>ThreatNet status</title><style>{_CSS}</style></head>
<body><header><h1>ThreatNet status</h1><span>{_e(stamp)} · channels: {channels}</span>
<span>ThreatNet {_e(metrics.BUILD[0])} · Limnoria {_e(metrics.BUILD[1])}</span></header>
<main>
<section class="wide"><h2>Threats kept per minute, last hour ({total} in all)</h2>
{plot(page.per_minute)}</section>
<section><h2>Current threats ({_e(listed)}), newest first</h2>
<form method="get" action=""><input type="search" name="q" value="{_e(query)}"
placeholder="filter: address, comment, reporter or channel"><button>Filter</button></form>
{_table("age address comment reporter channel expires_in", rows, "none")}{more}</section>
<div class="side"><section><h2>Agents</h2>
{_table("agent current kept_since_start", agents, "none yet")}</section>
<section><h2>Responders</h2>
{_table("channel responder threats errors health", responders, "none")}</section>
</div></main></body></html>
"""
    return body.encode("utf-8", "replace")
