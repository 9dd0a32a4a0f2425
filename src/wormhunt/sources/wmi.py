"""WMI permanent event subscriptions: `Get-WmiObject -Namespace root\\subscription -Class ...`.

Two renderings (formats.md sections 7.1 and 3.4):

* PowerShell Format-List: blocks of `Name<pad> : value`, objects separated by blank lines
  (or not at all when a copy was cut), padding per object, long values wrapped at the console
  width and continued on lines indented to the value column. The wrap splits inside tokens
  (`Win32_PerfFormattedD` + `ata_PerfOS_System`), so a full-width line is joined to its
  continuation without a space; a shorter line followed by a continuation is a value with a
  real line break (multi-line ScriptText) and is joined with a newline.
* `ConvertTo-Json`: one object or an array, several documents appended with `>>`;
  `Get-CimInstance` puts the class and namespace in `CimSystemProperties`.

Property names are WMI schema names, identical on zh-CN hosts. When `__` system properties
were excluded (`Select-Object * -ExcludeProperty __*`) the class is inferred from the
properties the object has. An ActiveScript consumer's `ScriptFileName` goes to `command`
when there is no command line: it is what the consumer runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from wormhunt.model import WMI
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.text import display_width, is_prompt, iter_lines

SCRIPT_LIMIT = 4096
WRAP_SLACK = 3
MIN_CONSOLE_WIDTH = 80  # narrower "wraps" are line breaks inside the value
_PROP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*) +:(?: (.*))?$")
_SUBSCRIPTION_CLASS = r"(?:__EventFilter|__FilterToConsumerBinding|\w*EventConsumer|__\w*TimerInstruction)"
_FL_CLASS = re.compile(r"^__CLASS +: " + _SUBSCRIPTION_CLASS + r"\s*$", re.MULTILINE)
_FL_HINT = re.compile(
    r"^(?:(?:CommandLineTemplate|ScriptingEngine|ScriptText|EventNamespace) +:"
    r"|__(?:RELPATH|PATH) +: .*?(?:__EventFilter|__FilterToConsumerBinding|EventConsumer))",
    re.MULTILINE,
)
_JSON_CLASS = re.compile(r'"(?:__CLASS|ClassName)"\s*:\s*"' + _SUBSCRIPTION_CLASS + '"')
_JSON_HINT = re.compile(r'"(?:CommandLineTemplate|ScriptingEngine|EventNamespace)"\s*:')
# `\\HOST\ROOT\Subscription:__EventFilter.Name="x"` -> namespace and class.
_PATH = re.compile(r"^\\\\[^\\]*\\(?P<ns>[^:]+):(?P<cls>[A-Za-z_]\w*)")
_RELPATH = re.compile(r"^(?P<cls>[A-Za-z_]\w*)(?:\.|=@|$)")
_KEY_NAME = re.compile(r'^[A-Za-z_]\w*\.Name="((?:[^"\\]|\\.)*)"$')


def sniff(head: str) -> float:
    """Format-List with a subscription `__CLASS` (or its tell-tale properties), or such JSON."""
    body = head.lstrip("\ufeff \t\r\n")
    if body.startswith(("{", "[")):
        if _JSON_CLASS.search(head):
            return 0.95
        return 0.8 if _JSON_HINT.search(head) else 0.0
    if _FL_CLASS.search(head):
        return 0.95
    return 0.75 if _FL_HINT.search(head) and _PROP.match(body.split("\n", 1)[0].rstrip()) else 0.0


def _infer_class(props: dict[str, Any]) -> str | None:
    cls = props.get("__CLASS")
    if isinstance(cls, str) and cls.strip():
        return cls.strip()
    for key, pattern in (("__PATH", _PATH), ("__RELPATH", _RELPATH)):
        value = props.get(key)
        if isinstance(value, str) and (m := pattern.match(value.strip())):
            return m.group("cls")
    if "CommandLineTemplate" in props:
        return "CommandLineEventConsumer"
    if "ScriptingEngine" in props or "ScriptText" in props:
        return "ActiveScriptEventConsumer"
    if "Query" in props and ("EventNamespace" in props or "QueryLanguage" in props):
        return "__EventFilter"
    if "Filter" in props and "Consumer" in props:
        return "__FilterToConsumerBinding"
    return None


def _namespace(props: dict[str, Any]) -> str | None:
    ns = props.get("__NAMESPACE")
    if isinstance(ns, str) and ns.strip():
        return ns.strip()
    path = props.get("__PATH")
    if isinstance(path, str) and (m := _PATH.match(path.strip())):
        return m.group("ns")
    return None


def _name(props: dict[str, Any]) -> str | None:
    """`Name`, or the key in `__RELPATH` when the listing was cut before the Name line."""
    name = _text(props, "Name")
    relpath = _text(props, "__RELPATH")
    if name is None and relpath and (m := _KEY_NAME.match(relpath)):
        return m.group(1).replace('\\"', '"').replace("\\\\", "\\") or None
    return name


def _text(props: dict[str, Any], key: str) -> str | None:
    value = props.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value).strip()
    return value or None


def _record(no: int, props: dict[str, Any], cls: str, source: str) -> dict[str, Any]:
    script = _text(props, "ScriptText")
    return {
        "line": no,
        "namespace": _namespace(props),
        "class": cls,
        "name": _name(props),
        "query": _text(props, "Query"),
        "command": _text(props, "CommandLineTemplate")
        or _text(props, "ExecutablePath")
        or _text(props, "ScriptFileName"),
        "script": script[:SCRIPT_LIMIT] if script else None,
        "filter": _text(props, "Filter"),
        "consumer": _text(props, "Consumer"),
        "source": source,
    }


def _emit(no: int, props: dict[str, Any], source: str, sink: Sink, text: str) -> None:
    cls = _infer_class(props)
    if cls is None:
        sink.skip(no, "not a WMI subscription object", text)
        return
    sink.row(WMI, _record(no, props, cls, source))


# Format-List -------------------------------------------------------------------------------


class _Block:
    def __init__(self, no: int, first: str) -> None:
        self.no = no
        self.first = first
        self.props: dict[str, str] = {}
        self.last: str | None = None  # property the next continuation line belongs to
        self.col = 0  # value column of the last property line
        self.prev_len = 0  # length of the last physical line of the last value


def _parse_list(text: str, sink: Sink) -> None:
    lines = list(iter_lines(text))
    # Console width: the longest line that is followed by a continuation (wrapped lines fill it).
    width = 0
    for i, (_, line) in enumerate(lines[:-1]):
        nxt = lines[i + 1][1]
        if nxt[:1] == " " and nxt.strip():
            width = max(width, display_width(line))  # console cells: CJK values take two

    block: _Block | None = None
    blank = False

    def close() -> None:
        nonlocal block
        if block is not None and block.props:
            _emit(block.no, block.props, "Get-WmiObject", sink, block.first)
        block = None

    for no, line in lines:
        if not line.strip():
            blank = True
            continue
        m = _PROP.match(line)
        if m:
            key, value = m.group(1), (m.group(2) or "").strip()
            if block is not None and (blank or key == "__GENUS" or key in block.props):
                close()  # a new object: after blank lines, at `__GENUS`, or a name seen twice
            if block is None:
                block = _Block(no, line)
            block.props[key] = value
            block.last, block.col, block.prev_len = key, line.index(":") + 2, display_width(line)
            blank = False
            continue
        indent = len(line) - len(line.lstrip(" "))
        if block is not None and block.last is not None and indent >= block.col - 1 and indent > 0:
            # Continuation of the last value: a full-width line was wrapped inside a token.
            # Wrapped lines come out 1-2 characters short of the widest one in real captures
            # (`CommandLineEventConsume` + `r.Name` at 118 of 119), so allow a little slack.
            sep = "" if block.prev_len >= max(width - WRAP_SLACK, MIN_CONSOLE_WIDTH - 1) else "\n"
            block.props[block.last] += sep + line[block.col :] if indent >= block.col else sep + line.strip()
            block.prev_len = display_width(line)
            blank = False
            continue
        if is_prompt(line):
            close()
            blank = False
            continue
        sink.skip(no, "not a Format-List property line", line)
    close()


# ConvertTo-Json ----------------------------------------------------------------------------


def _iter_json(text: str, sink: Sink) -> Iterator[tuple[int, Any]]:
    """(line, value) of each object in the text: top-level objects and elements of top-level arrays."""
    dec = json.JSONDecoder()
    pos, n = 0, len(text)

    def line_of(p: int) -> int:
        return text.count("\n", 0, p) + 1

    ws = re.compile(r"[\s,\ufeff]*")
    while True:
        pos = ws.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return
        if text[pos] == "[":
            pos += 1
            while True:
                pos = ws.match(text, pos).end()  # type: ignore[union-attr]
                if pos >= n:
                    sink.skip(line_of(pos - 1), "unterminated JSON array", "")
                    return
                if text[pos] == "]":
                    pos += 1
                    break
                try:
                    value, end = dec.raw_decode(text, pos)
                except json.JSONDecodeError as exc:
                    pos = _resync(text, pos, exc, sink, line_of)
                    break
                yield line_of(pos), value
                pos = end
            continue
        try:
            value, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            pos = _resync(text, pos, exc, sink, line_of)
            continue
        yield line_of(pos), value
        pos = end


def _resync(text: str, pos: int, exc: json.JSONDecodeError, sink: Sink, line_of: Any) -> int:
    """Count the broken document and continue at the next line that opens one."""
    no = line_of(pos)
    sink.skip(no, "bad JSON", text[pos : text.find("\n", pos) if "\n" in text[pos:] else len(text)])
    m = re.compile(r"\n[{\[]").search(text, max(pos + 1, exc.pos))
    return m.start() + 1 if m else len(text)


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    props = dict(obj)
    cim = obj.get("CimSystemProperties")
    if isinstance(cim, dict):
        # Get-CimInstance: class and namespace live here, not in `__` properties.
        if isinstance(cim.get("ClassName"), str):
            props.setdefault("__CLASS", cim["ClassName"])
        if isinstance(cim.get("Namespace"), str):
            props.setdefault("__NAMESPACE", cim["Namespace"])
    return props


def _parse_json(text: str, sink: Sink) -> None:
    for no, value in _iter_json(text, sink):
        if not isinstance(value, dict):
            sink.skip(no, "JSON value is not an object", json.dumps(value)[:300])
            continue
        _emit(no, _flatten(value), "Get-WmiObject-json", sink, json.dumps(value, ensure_ascii=False)[:300])


def parse(text: str, sink: Sink) -> None:
    """Parse Get-WmiObject subscription listings (Format-List or JSON) into `wmi` rows."""
    first = next((line.strip() for _, line in iter_lines(text) if line.strip() and not is_prompt(line)), "")
    if first.lstrip("\ufeff").startswith(("{", "[")):
        _parse_json(text.lstrip("\ufeff"), sink)
    else:
        _parse_list(text, sink)


FORMATS: tuple[Format, ...] = (
    Format(
        "wmi-subscription",
        "Get-WmiObject root\\subscription filters, consumers, bindings (Format-List or ConvertTo-Json)",
        sniff,
        parse_text=parse,
    ),
)
