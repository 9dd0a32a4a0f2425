"""File listings and file hashes from the host: `dir /s [/t:c|/t:w|/t:a]` (en and zh-CN),
`Get-ChildItem | Select FullName,Length,CreationTime,LastWriteTime | Export-Csv`,
`certutil -hashfile` (en and zh-CN, one or several concatenated) and `Get-FileHash`
(table, list and CSV) -> `files` rows.

Dates are in the host's short date format, so the day/month order is decided from the whole
file (a part above 12 settles it) and every time goes through `timeparse.parse_datetime`.
The PowerShell table/list/CSV readers here are shared with `hotfix.py`.
"""

from __future__ import annotations

import csv
import re
from typing import Any

from wormhunt.model import FILES
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.systeminfo import _date_order
from wormhunt.sources.text import display_width, is_prompt, iter_lines
from wormhunt.timeparse import parse_datetime

# ---------------------------------------------------------------- PowerShell output helpers

_PS_RULER = re.compile(r"^\s*-{2,}(?:\s+-{2,})*\s*$")
_LIST_LINE = re.compile(r"^(?P<key>[A-Za-z_][\w.]*)\s*:(?:\s(?P<value>.*))?$")


def ps_spans(ruler: str) -> list[int]:
    """Start cell of each column of a Format-Table `---- ----` ruler."""
    return [m.start() for m in re.finditer(r"-+", ruler)]


def ps_cells(line: str, starts: list[int]) -> list[str]:
    """Slice a table row at the ruler's column starts, counted in console cells (CJK = 2)."""
    out = [""] * len(starts)
    col = 0
    for ch in line:
        idx = 0
        for i, s in enumerate(starts):
            if col >= s:
                idx = i
        out[idx] += ch
        col += display_width(ch)
    return [c.strip() for c in out]


def csv_cells(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


def csv_header(line: str, required: set[str]) -> list[str] | None:
    """A PowerShell CSV header (`"A","B"`, or unquoted) holding the `required` column names."""
    cells = csv_cells(line) if "," in line else None
    if cells and required <= {c.strip() for c in cells}:
        return [c.strip() for c in cells]
    return None


def is_ps_truncated(value: str) -> bool:
    """Format-Table cuts long values with `...` (PS 5.1) or `…` (PS 7)."""
    return value.endswith(("...", "…"))


# ---------------------------------------------------------------- shared

_ORDER_DATE = re.compile(r"\b\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}\b")


def _order(text: str) -> str | None:
    return _date_order(_ORDER_DATE.findall(text), "")


def _time(text: str | None, order: str | None, sink: Sink) -> Any:
    if not text or not text.strip():
        return None
    parsed = parse_datetime(text, order)
    if parsed.ambiguous:
        # Day and month could both be either: read month first, and say so once.
        warnings = sink.meta.setdefault("warnings", [])
        if not any(w.get("code") == "ambiguous_dates" for w in warnings):
            warnings.append({"code": "ambiguous_dates", "order": "month first"})
    return parsed.value


def _row(no: int, source: str, path: str | None, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "line": no,
        "path": path,
        "size": None,
        "created": None,
        "modified": None,
        "accessed": None,
        "is_dir": None,
        "md5": None,
        "sha1": None,
        "sha256": None,
        "source": source,
    }
    row.update(values)
    return row


def _size(text: str) -> int | None:
    """`142,336` / `142.336` / `142 336` (NBSP, narrow NBSP) -> 142336."""
    return to_int(re.sub(r"[,.\u00a0\u202f ]", "", text), 2**62)


# ---------------------------------------------------------------- dir

_DIR_HEADER_EN = re.compile(r"^\s*Directory of\s+(?P<dir>\S.*?)\s*$", re.IGNORECASE)
_DIR_HEADER_ZH = re.compile(r"^\s*(?P<dir>(?:[A-Za-z]:|\\\\).*?)\s*的目录\s*$")
_DIR_ENTRY = re.compile(
    r"^(?P<date>\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4})\s+(?:(?P<ap1>上午|下午)\s*)?(?P<time>\d{1,2}:\d{2})"
    r"(?:\s*(?P<ap2>[AaPp]\.?\s?[Mm]\.?|上午|下午))?"
    r"\s+(?:(?P<tag><(?:DIR|JUNCTION|SYMLINKD|SYMLINK)>)|(?P<size>\d[\d,.\u00a0\u202f]*))"
    r"\s+(?P<name>\S.*)$"
)
# Lines of the listing that carry no file: volume banner, per-directory and final totals.
_DIR_NOISE = re.compile(
    r"^\s*(?:Volume in drive|Volume Serial Number|驱动器 \S+ 中的卷|卷的序列号是|"
    r"\d[\d,.\u00a0\u202f]*\s+(?:File\(s\)|Dir\(s\)|个文件|个目录)|Total Files Listed|所列文件总数)",
    re.IGNORECASE,
)
_DIR_EMPTY = re.compile(r"^\s*(?:File Not Found|找不到文件|The system cannot find|系统找不到)", re.IGNORECASE)
_DIR_BANNER = re.compile(r"^\s*(?:Volume in drive \S+ (?:has no label|is )|驱动器 \S+ 中的卷)", re.IGNORECASE)
_DIR_NOT_FOUND = re.compile(r"^\s*(?:File Not Found|找不到文件)\s*$", re.IGNORECASE)
_TIME_SWITCH = re.compile(r"/t\s*:?\s*([cwa])", re.IGNORECASE)


def _dir_header(line: str) -> str | None:
    m = _DIR_HEADER_EN.match(line) or _DIR_HEADER_ZH.match(line)
    return m.group("dir") if m else None


def sniff_dir(head: str) -> float:
    lines = [line for _, line in iter_lines(head)][:80]
    headers = sum(1 for line in lines if _dir_header(line))
    entries = sum(1 for line in lines if _DIR_ENTRY.match(line))
    if headers and entries:
        return 0.95
    if any(_DIR_BANNER.match(line) for line in lines) and any(_DIR_NOT_FOUND.match(line) for line in lines):
        return 0.9  # `dir` of a folder that is not there: the volume banner, then `File Not Found` (zero records)
    return 0.6 if headers and any(_DIR_NOISE.match(line) for line in lines) else 0.0


def parse_dir(text: str, sink: Sink) -> None:
    """Parse `dir` (`/s`, `/t:c`, `/t:w`, `/t:a`) into `files` rows: path, size, is_dir and the listed time."""
    order = _order(text)
    field = "modified"  # dir shows the last write time unless /t:c or /t:a was given
    current: str | None = None
    for no, line in iter_lines(text):
        if not line.strip():
            continue
        if is_prompt(line):
            cmd = line.split(">", 1)[1]
            if re.search(r"\bdir\b", cmd, re.IGNORECASE) and (m := _TIME_SWITCH.search(cmd)):
                field = {"c": "created", "w": "modified", "a": "accessed"}[m.group(1).lower()]
            continue
        header = _dir_header(line)
        if header is not None:
            current = header
            continue
        if _DIR_NOISE.match(line) or _DIR_EMPTY.match(line):
            continue
        m = _DIR_ENTRY.match(line)
        if m is None:
            sink.skip(no, "not a dir entry", line)
            continue
        name = m.group("name")
        if name in (".", ".."):
            continue  # the directory itself and its parent, listed in every directory
        if current is None:
            sink.skip(no, "dir entry before any 'Directory of' line", line)
            continue
        when = f"{m.group('date')} {m.group('ap1') or ''}{m.group('time')} {m.group('ap2') or ''}"
        stamp = _time(when, order, sink)
        if stamp is None:
            sink.skip(no, "bad date", line)
            continue
        tag = m.group("tag")
        size = None if tag else _size(m.group("size"))
        if not tag and size is None:
            sink.skip(no, "bad size", line)
            continue
        if tag in ("<JUNCTION>", "<SYMLINKD>", "<SYMLINK>"):
            name = re.sub(r"\s+\[[^\]]*\]$", "", name)  # `Documents and Settings [C:\Users]`
        path = current.rstrip("\\") + "\\" + name
        is_dir = tag is not None and tag != "<SYMLINK>"
        sink.row(FILES, _row(no, "dir", path, size=size, is_dir=is_dir, **{field: stamp}))


# ---------------------------------------------------------------- Get-ChildItem CSV

_GCI_TIMES = {"CreationTime": "created", "LastWriteTime": "modified", "LastAccessTime": "accessed"}


def _gci_header(line: str) -> list[str] | None:
    cols = csv_header(line, {"FullName"})
    if cols and ({"Length", *_GCI_TIMES} & set(cols)):
        return cols
    return None


def sniff_gci(head: str) -> float:
    for _, line in list(iter_lines(head))[:10]:
        if _gci_header(line):
            return 0.95
    return 0.0


def _bool(text: str | None) -> bool | None:
    t = (text or "").strip().lower()
    return True if t == "true" else False if t == "false" else None


def parse_gci(text: str, sink: Sink) -> None:
    """Parse a Get-ChildItem CSV (`#TYPE` line optional) into `files` rows."""
    order = _order(text)
    cols: list[str] | None = None
    for no, line in iter_lines(text):
        if not line.strip() or is_prompt(line) or line.startswith("#TYPE"):
            continue
        header = _gci_header(line)
        if header:
            cols = header
            continue
        if cols is None:
            sink.skip(no, "row before the CSV header", line)
            continue
        cells = csv_cells(line)
        if cells is None or len(cells) != len(cols):
            sink.skip(no, "wrong number of CSV fields", line)
            continue
        rec = dict(zip(cols, cells, strict=True))
        path = rec.get("FullName", "").strip()
        length = rec.get("Length", "").strip()
        size = _size(length) if length else None
        if not path or (length and size is None):
            sink.skip(no, "bad path or length", line)
            continue
        is_dir = _bool(rec.get("PSIsContainer"))
        mode = rec.get("Mode") or rec.get("Attributes") or ""
        if is_dir is None and mode:
            is_dir = mode.startswith("d") or "Directory" in mode
        if is_dir is None and size is not None:
            is_dir = False
        times: dict[str, Any] = {}
        bad = False
        for col, key in _GCI_TIMES.items():
            value = rec.get(col, "").strip()
            if value:
                times[key] = _time(value, order, sink)
                bad = bad or times[key] is None
        if bad:
            sink.skip(no, "bad date", line)
            continue
        sink.row(FILES, _row(no, "Get-ChildItem", path, size=size, is_dir=is_dir, **times))


# ---------------------------------------------------------------- certutil -hashfile

_HASH_LEN = {"md5": 32, "sha1": 40, "sha256": 64}
_ALGO = r"(?P<algo>MD[245]|SHA-?\d{1,3})"
_CU_HEADER_EN = re.compile(rf"^\s*{_ALGO}\s+hash\s+of\s+(?:file\s+)?(?P<path>.+?):\s*$", re.IGNORECASE)
# zh-CN builds word it either way round: `C:\x.exe 的 SHA256 哈希:` and `SHA256 的 C:\x.exe 哈希:`
# (older ones add `文件`, "file", as English Windows 7 adds `of file`).
_CU_HEADER_ZH = re.compile(rf"^\s*(?:文件\s*)?(?P<path>.+?)\s+的\s+{_ALGO}\s+哈希[:：]\s*$", re.IGNORECASE)
_CU_HEADER_ZH2 = re.compile(rf"^\s*{_ALGO}\s+的\s+(?:文件\s+)?(?P<path>.+?)\s+哈希[:：]\s*$", re.IGNORECASE)
_CU_DONE = re.compile(r"^\s*CertUtil:\s*-hashfile\s+(?:command completed successfully|命令成功完成)", re.IGNORECASE)
_CU_OTHER = re.compile(r"^\s*CertUtil:", re.IGNORECASE)
_HEX = re.compile(r"^[0-9A-Fa-f ]+$")


def _cu_header(line: str) -> tuple[str, str] | None:
    m = _CU_HEADER_EN.match(line) or _CU_HEADER_ZH2.match(line) or _CU_HEADER_ZH.match(line)
    return (m.group("algo").replace("-", "").lower(), m.group("path").strip()) if m else None


def sniff_certutil(head: str) -> float:
    lines = [line for _, line in iter_lines(head)][:40]
    if any(_cu_header(line) for line in lines):
        return 0.95
    return 0.6 if any(_CU_DONE.match(line) for line in lines) else 0.0


def parse_certutil(text: str, sink: Sink) -> None:
    """Parse `certutil -hashfile` output (several runs may follow each other) into `files` rows."""
    pending: tuple[int, str, str, str] | None = None  # header line, its text, algorithm, path

    def missing() -> None:
        nonlocal pending
        if pending is not None:
            sink.skip(pending[0], "hash header without a hash (cut short)", pending[1])
            pending = None

    for no, line in iter_lines(text):
        if not line.strip() or is_prompt(line):
            continue
        header = _cu_header(line)
        if header:
            missing()
            pending = (no, line, *header)
            continue
        if _CU_DONE.match(line):
            missing()
            continue
        if _CU_OTHER.match(line):
            missing()
            sink.skip(no, "certutil error", line)
            continue
        if pending is None or not _HEX.match(line.strip()):
            sink.skip(no, "not a certutil line", line)
            continue
        hno, _, algo, path = pending
        pending = None
        digest = line.replace(" ", "").lower()
        if algo not in _HASH_LEN:
            sink.skip(no, f"hash algorithm {algo} not kept", line)
        elif len(digest) != _HASH_LEN[algo]:
            sink.skip(no, "hash of the wrong length (cut short)", line)
        else:
            sink.row(FILES, _row(hno, "certutil", path, **{algo: digest}))
    missing()


# ---------------------------------------------------------------- Get-FileHash

_FH_COLS = {"Algorithm", "Hash", "Path"}


def _fh_table_header(lines: list[str], i: int) -> list[int] | None:
    """Column starts when line i is the `Algorithm Hash Path` header and a ruler follows."""
    if i + 1 < len(lines) and _PS_RULER.match(lines[i + 1]) and set(lines[i].split()) == _FH_COLS:
        return ps_spans(lines[i + 1])
    return None


def sniff_filehash(head: str) -> float:
    lines = [line for _, line in iter_lines(head)][:40]
    for i, line in enumerate(lines):
        if csv_header(line, _FH_COLS) or _fh_table_header(lines, i):
            return 0.95
        if line.startswith("Algorithm") and _LIST_LINE.match(line):
            nxt = [ln for ln in lines[i + 1 : i + 3] if ln.strip()]
            if nxt and nxt[0].startswith("Hash") and _LIST_LINE.match(nxt[0]):
                return 0.9
    return 0.0


def _fh_emit(no: int, rec: dict[str, str], line: str, sink: Sink) -> None:
    algo = rec.get("Algorithm", "").strip().replace("-", "").lower()
    digest = rec.get("Hash", "").strip().lower()
    path = rec.get("Path", "").strip()
    if algo not in _HASH_LEN:
        sink.skip(no, f"hash algorithm {algo or '?'} not kept", line)
    elif len(digest) != _HASH_LEN[algo] or not _HEX.match(digest) or not path:
        sink.skip(no, "bad hash or path (cut short)", line)
    else:
        if is_ps_truncated(path):
            sink.meta.setdefault("warnings", []).append({"code": "path_truncated", "line": no})
        sink.row(FILES, _row(no, "Get-FileHash", path, **{algo: digest}))


def parse_filehash(text: str, sink: Sink) -> None:
    """Parse Get-FileHash output (table, list or CSV) into `files` rows."""
    numbered = list(iter_lines(text))
    lines = [line for _, line in numbered]
    mode: str | None = None  # "table", "list", "csv"
    starts: list[int] = []
    cols: list[str] = []
    rec: dict[str, str] = {}
    rec_line = 0
    last_key: str | None = None
    skip_next = False

    def flush() -> None:
        nonlocal rec, last_key
        if rec:
            _fh_emit(rec_line, rec, " ".join(f"{k} : {v}" for k, v in rec.items()), sink)
        rec, last_key = {}, None

    for i, (no, line) in enumerate(numbered):
        if skip_next:
            skip_next = False
            continue
        if not line.strip():
            if mode == "list":
                flush()
            continue
        if is_prompt(line) or line.startswith("#TYPE"):
            continue
        if (header := csv_header(line, _FH_COLS)) is not None:
            flush()
            mode, cols = "csv", header
            continue
        if (spans := _fh_table_header(lines, i)) is not None:
            flush()
            mode, cols, starts, skip_next = "table", line.split(), spans, True
            continue
        m = _LIST_LINE.match(line)
        if m and m.group("key") in _FH_COLS:
            if mode != "list" or m.group("key") in rec:
                flush()
            mode = "list"
            if not rec:
                rec_line = no
            last_key = m.group("key")
            rec[last_key] = (m.group("value") or "").strip()
            continue
        if mode == "list" and last_key and line[:1].isspace():
            rec[last_key] += line.strip()  # Format-List wraps long values onto indented lines
            continue
        if mode == "csv":
            cells = csv_cells(line)
            if cells is None or len(cells) != len(cols):
                sink.skip(no, "wrong number of CSV fields", line)
                continue
            _fh_emit(no, dict(zip(cols, cells, strict=True)), line, sink)
        elif mode == "table":
            _fh_emit(no, dict(zip(cols, ps_cells(line, starts), strict=False)), line, sink)
        else:
            sink.skip(no, "not a Get-FileHash line", line)
    flush()


FORMATS: tuple[Format, ...] = (
    Format("dir", "dir /s listing (/t:c, /t:w, /t:a), en and zh-CN", sniff_dir, parse_text=parse_dir),
    Format("Get-ChildItem-csv", "Get-ChildItem | Select FullName,... | Export-Csv", sniff_gci, parse_text=parse_gci),
    Format("certutil-hashfile", "certutil -hashfile FILE [MD5|SHA1|SHA256]", sniff_certutil, parse_text=parse_certutil),
    Format("Get-FileHash", "Get-FileHash (table, list, CSV)", sniff_filehash, parse_text=parse_filehash),
)
