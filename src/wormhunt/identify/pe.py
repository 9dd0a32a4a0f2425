"""PE facts with lief: machine, compile time, imphash, version info, Authenticode, name rules.

Never raises: a file that is not a PE gives `is_pe=False`; a damaged one gives `error` and
whatever could still be read.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from wormhunt.identify.model import Note, PeFacts

VERSION_KEYS = ("OriginalFilename", "InternalName", "CompanyName", "FileDescription", "FileVersion", "ProductName")

# Names of Windows system binaries that worms and miners borrow (threat-intel.md 1.3, 2.5).
SYSTEM_NAMES = re.compile(
    r"^(svchost|spoolsv|lsass|services|csrss|smss|wininit|winlogon|explorer|taskhost\w*|dllhost|conhost"
    r"|rundll32|taskmgr)\.exe$",
    re.IGNORECASE,
)

_lief = None


def load_lief():
    global _lief
    if _lief is None:
        import lief

        lief.logging.disable()
        _lief = lief
    return _lief


def _norm(name: str) -> str:
    name = name.strip().strip("\x00").lower()
    return name[:-4] if name.endswith(".mui") else name


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def _version_info(binary) -> dict[str, str]:
    out: dict[str, str] = {}
    if not binary.has_resources or not binary.resources_manager.has_version:
        return out
    versions = binary.resources_manager.version
    for version in versions if isinstance(versions, list) else [versions]:
        sfi = version.string_file_info
        if sfi is None:
            continue
        for table in sfi.children:
            for entry in table.entries:
                key = str(entry.key)
                if key in VERSION_KEYS and key not in out and entry.value:
                    out[key] = str(entry.value).strip("\x00").strip()
    return out


def _truncated(binary, size: int) -> bool:
    return any(s.size and s.offset + s.size > size for s in binary.sections)


def name_notes(file_name: str, info: dict[str, str], signed: bool) -> list[Note]:
    """The name rules: the actual name against OriginalFilename/InternalName, and system-binary impostors."""
    notes: list[Note] = []
    actual = _norm(file_name)
    claimed = {k: info[k] for k in ("OriginalFilename", "InternalName") if info.get(k)}
    system = bool(SYSTEM_NAMES.match(actual))
    if claimed:
        wanted = {_norm(v) for v in claimed.values()}
        if actual not in wanted and _stem(actual) not in {_stem(w) for w in wanted}:
            notes.append(
                Note(
                    "pe.name_mismatch",
                    "alert" if system else "warn",
                    {"name": file_name, "original": claimed.get("OriginalFilename") or claimed.get("InternalName")},
                )
            )
    if system:
        company = info.get("CompanyName", "")
        if "microsoft" not in company.lower():
            notes.append(Note("pe.system_name_not_microsoft", "alert", {"name": file_name, "company": company or "-"}))
        elif not signed:
            # Genuine system binaries are usually catalog-signed, with no embedded signature:
            # worth a look (compare the hash with a clean host), not proof on its own.
            notes.append(Note("pe.system_name_unsigned", "warn", {"name": file_name}))
    return notes


def pe_facts(data: bytes, file_name: str) -> PeFacts:
    """The PE facts of `data` (the whole file); `file_name` is its actual name, for the name rules."""
    if len(data) < 64 or data[:2] != b"MZ":
        return PeFacts(is_pe=False)
    try:
        lief = load_lief()
        binary = lief.PE.parse(io.BytesIO(data))
    except Exception as exc:  # lief raises on some malformed inputs
        return PeFacts(is_pe=True, error=f"{type(exc).__name__}: {exc}")
    if binary is None:
        return PeFacts(is_pe=True, error="not a parseable PE (MZ header but no valid PE structure)")
    facts = PeFacts(is_pe=True)
    try:
        facts.machine = str(binary.header.machine).rsplit(".", 1)[-1]
        stamp = binary.header.time_date_stamps
        facts.compile_time = datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
        if binary.has_imports:
            facts.imphash = lief.PE.get_imphash(binary, lief.PE.IMPHASH_MODE.PEFILE) or None
        facts.version_info = _version_info(binary)
        facts.signed = bool(binary.has_signatures)
        facts.signature_status = str(binary.verify_signature()).rsplit(".", 1)[-1]
        if _truncated(binary, len(data)):
            facts.notes.append(Note("pe.truncated", "warn", {}))
            facts.error = "truncated: a section extends past the end of the file"
    except Exception as exc:
        facts.error = f"{type(exc).__name__}: {exc}"
    if facts.signed and facts.signature_status and facts.signature_status != "OK":
        severity = "alert" if "BAD_DIGEST" in facts.signature_status else "warn"
        facts.notes.append(Note("pe.signature_invalid", severity, {"status": facts.signature_status}))
    facts.notes.extend(name_notes(file_name, facts.version_info, facts.signed and facts.signature_status == "OK"))
    return facts
