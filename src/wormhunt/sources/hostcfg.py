"""Small host settings -> `host_config` rows: `netsh interface portproxy show all` (miners and
worms forward ports through it) and `net user` (accounts they add), en and zh-CN.
"""

from __future__ import annotations

import re

from wormhunt.model import HOST_CONFIG
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.text import is_prompt, iter_lines

# ---------------------------------------------------------------- netsh portproxy

_PP_SECTION = re.compile(
    r"^\s*(?:Listen on|侦听)\s*ipv[46]\s*[:：]\s+(?:Connect to|连接到)\s*ipv[46]\s*[:：]\s*$", re.IGNORECASE
)
_PP_HEADER = re.compile(r"^\s*(?:Address|地址)\s+(?:Port|端口)\s+(?:Address|地址)\s+(?:Port|端口)\s*$", re.IGNORECASE)
_PP_RULER = re.compile(r"^\s*-+(?:\s+-+){3}\s*$")


_PP_PROMPT = re.compile(
    r"^\S.*>\s*netsh\s+(?:interface|int)\s+portproxy\s+show\s+(?:all|v[46]tov[46])\s*$", re.IGNORECASE
)


def sniff_portproxy(head: str) -> float:
    lines = [line for _, line in iter_lines(head)][:30]
    if any(_PP_SECTION.match(line) for line in lines):
        return 0.95
    content = [line for line in lines if line.strip()]
    if len(content) == 1 and _PP_PROMPT.match(content[0]):
        return 0.9  # a console copy of netsh with no forward: the echoed command and nothing else
    return 0.6 if any(_PP_HEADER.match(line) for line in lines) else 0.0


def _endpoint(addr: str, port: str) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def parse_portproxy(text: str, sink: Sink) -> None:
    """Parse `netsh interface portproxy show all` (v4tov4, v4tov6, v6tov4, v6tov6 sections)."""
    in_table = False
    for no, line in iter_lines(text):
        if not line.strip() or is_prompt(line):
            continue
        if _PP_SECTION.match(line) or _PP_HEADER.match(line):
            in_table = False
            continue
        if _PP_RULER.match(line):
            in_table = True
            continue
        parts = line.split()
        if not in_table:
            sink.skip(no, "line outside a portproxy table", line)
            continue
        ports = [to_int(p, 65535) for p in parts[1::2]]
        if len(parts) != 4 or None in ports:
            sink.skip(no, "not a portproxy row (cut short?)", line)
            continue
        sink.row(
            HOST_CONFIG,
            {
                "line": no,
                "kind": "portproxy",
                "name": _endpoint(parts[0], parts[1]),
                "value": _endpoint(parts[2], parts[3]),
                "source": "netsh",
            },
        )


# ---------------------------------------------------------------- net user

_NU_HEADER = re.compile(r"^\s*(?:User accounts for\s+\\\\\S+|\\\\\S+\s*的用户[帐账]户)\s*$", re.IGNORECASE)
_NU_RULER = re.compile(r"^-{10,}\s*$")
_NU_DONE = re.compile(
    r"^\s*(?:The command completed|命令成功完成|命令完成|There are no entries in the list|列表是空的)", re.IGNORECASE
)


def sniff_netuser(head: str) -> float:
    lines = [line for _, line in iter_lines(head)][:30]
    return 0.95 if any(_NU_HEADER.match(line) for line in lines) else 0.0


def parse_netuser(text: str, sink: Sink) -> None:
    """Parse `net user` into one `host_config` row per account (several listings may follow each other)."""
    state = "before"  # before -> header -> names
    for no, line in iter_lines(text):
        if not line.strip() or is_prompt(line):
            continue
        if _NU_HEADER.match(line):
            state = "header"
            continue
        if _NU_RULER.match(line) and state == "header":
            state = "names"
            continue
        if _NU_DONE.match(line):
            state = "before"
            continue
        if state != "names":
            sink.skip(no, "line outside a net user listing", line)
            continue
        # Names are padded to 25-character columns; a name may itself hold a single space.
        for name in re.split(r"\s{2,}", line.strip()):
            sink.row(HOST_CONFIG, {"line": no, "kind": "user", "name": name, "value": None, "source": "net user"})


FORMATS: tuple[Format, ...] = (
    Format("netsh-portproxy", "netsh interface portproxy show all", sniff_portproxy, parse_text=parse_portproxy),
    Format("net-user", "net user (account list)", sniff_netuser, parse_text=parse_netuser),
)
