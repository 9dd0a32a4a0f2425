"""`--ui HOST:PORT`: one small live page served by the watch process itself (stdlib asyncio,
no external assets). `/` is the page, rendered once on the server (every string escaped) and
then refreshed every second from `/api/state` by a script that writes only `textContent`.
A Content-Security-Policy allows the page's own inline script (by nonce) and requests to its
own origin, nothing else.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
from collections.abc import Callable
from typing import Any

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wormhunt watch</title>
<style nonce="{nonce}">
body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}} h1{{font-size:1.3em}}
table{{border-collapse:collapse;margin-bottom:1.5em;width:100%}} td,th{{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}} th{{background:#f3f3f3}} code{{white-space:pre-wrap;word-break:break-all}}
.muted{{color:#777}}
</style></head><body>
<h1>wormhunt watch</h1>
<p class="muted">Updated <span id="updated">{updated}</span></p>
<h2>Receivers</h2>
<table><thead><tr><th>source</th><th>messages</th><th>messages/s</th><th>errors</th></tr></thead>
<tbody id="receivers">{receivers}</tbody></table>
<p>Total: <span id="rate">{rate}</span> messages/s · dropped (queue full): <span id="dropped">{dropped}</span> ·
parse errors: <span id="parse_errors">{parse_errors}</span> · stored: <span id="stored">{stored}</span></p>
<h2>Spreaders</h2>
<table><thead><tr><th>source</th><th>first seen</th><th>targets</th><th>reasons</th></tr></thead>
<tbody id="spreaders">{spreaders}</tbody></table>
<h2>Recent alerts</h2>
<table><thead><tr><th>at</th><th>source</th><th>what</th><th>evidence</th></tr></thead>
<tbody id="alerts">{alerts}</tbody></table>
<script nonce="{nonce}">
"use strict";
function row(cells){{const tr=document.createElement("tr");for(const c of cells){{const td=document.createElement("td");
td.textContent=c==null?"":String(c);tr.appendChild(td);}}return tr;}}
function fill(id,rows){{const el=document.getElementById(id);el.replaceChildren(...rows.map(row));}}
function text(id,v){{document.getElementById(id).textContent=v==null?"":String(v);}}
async function refresh(){{
  try{{
    const r=await fetch("api/state",{{cache:"no-store"}});const s=await r.json();
    text("updated",s.updated);text("rate",s.rate);text("dropped",s.dropped);text("parse_errors",s.parse_errors);
    text("stored",s.stored);fill("receivers",s.receivers);fill("spreaders",s.spreaders);fill("alerts",s.alerts);
  }}catch(e){{text("updated","(watch process not reachable)");}}
}}
setInterval(refresh,1000);
</script></body></html>
"""


def rows(doc: dict[str, Any]) -> dict[str, Any]:
    """The page's tables as lists of cells (the same for the page and the JSON)."""
    receivers = [
        [name, r["messages"], r.get("rate", 0), ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items()))]
        for name, r in sorted(doc["receivers"].items())
    ]
    spreaders = [
        [s.get("src"), s.get("first_seen"), s.get("distinct_targets"), " · ".join(s.get("reasons") or [])]
        for s in doc["spreaders"]
    ]
    alerts = []
    for a in doc["alerts"]:
        whats, evidence = [], []
        for it in a["items"]:
            if it["category"] == "spreader":
                whats.append(f"spreader {it['src']}")
                evidence += it["spreader"].get("evidence", [])[:1]
            else:
                x = it["alert"]
                whats.append(f"{x['kind']} {x['src']} -> {x['dst'] or '?'} {x['signature']}")
                evidence += x.get("evidence", [])[:1]
        what = "; ".join(whats[:5]) + (" …" if len(whats) > 5 else "")
        alerts.append([a["at"], a["src"], what, "\n".join(evidence[:3])])
    return {
        "updated": doc["updated"],
        "rate": doc["rate"],
        "dropped": doc["dropped"],
        "parse_errors": doc["parse_errors"],
        "stored": doc["stored"],
        "receivers": receivers,
        "spreaders": spreaders,
        "alerts": alerts,
    }


def _cells(table: list[list[Any]]) -> str:
    return "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in r) + "</tr>" for r in table
    )


def page(doc: dict[str, Any], nonce: str) -> str:
    d = rows(doc)
    return _PAGE.format(
        nonce=nonce,
        updated=html.escape(str(d["updated"])),
        rate=html.escape(str(d["rate"])),
        dropped=html.escape(str(d["dropped"])),
        parse_errors=html.escape(str(d["parse_errors"])),
        stored=html.escape(str(d["stored"])),
        receivers=_cells(d["receivers"]),
        spreaders=_cells(d["spreaders"]),
        alerts=_cells(d["alerts"]),
    )


def _response(status: str, ctype: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
        f"{extra}Connection: close\r\n\r\n"
    )
    return head.encode() + body


async def serve(host: str, port: int, state: Callable[[], dict[str, Any]]) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target = ([*request.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""])[:2]
            path = target.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                out = _response("405 Method Not Allowed", "text/plain", b"GET only\n")
            elif path == "/api/state":
                body = json.dumps(rows(state()), ensure_ascii=True, default=str).encode()
                out = _response("200 OK", "application/json", body)
            elif path == "/":
                nonce = secrets.token_urlsafe(16)
                csp = (
                    f"Content-Security-Policy: default-src 'none'; script-src 'nonce-{nonce}'; "
                    f"style-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'\r\n"
                )
                out = _response("200 OK", "text/html; charset=utf-8", page(state(), nonce).encode(), csp)
            else:
                out = _response("404 Not Found", "text/plain", b"not found\n")
            if method == "HEAD":
                out = out.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            writer.write(out)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, limit=16 * 1024)
