"""Record kinds (one case-store table each) and the one Finding type.

A record kind is a named list of typed columns. Parsers emit rows of a kind; the store
creates one DuckDB table per kind from the same definition, so the schema is written
once. Every table starts with the provenance columns: the evidence file, the physical
line in it, and the host the record describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    sql: str  # DuckDB type
    arrow: pa.DataType
    doc: str = ""


def _c(name: str, sql: str, doc: str = "") -> Column:
    arrow = {
        "VARCHAR": pa.string(),
        "INTEGER": pa.int32(),
        "BIGINT": pa.int64(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us"),
        "VARCHAR[]": pa.list_(pa.string()),
        "MAP(VARCHAR, VARCHAR)": pa.map_(pa.string(), pa.string()),
    }[sql]
    return Column(name, sql, arrow, doc)


PROVENANCE = (
    _c("evidence_id", "INTEGER", "evidence file (see the evidence table for path and sha256)"),
    _c("line", "BIGINT", "1-based physical line in the evidence file"),
    _c("host", "VARCHAR", "host the record describes (a device name for network logs)"),
)


@dataclass(frozen=True)
class Kind:
    name: str
    columns: tuple[Column, ...]
    doc: str = ""

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return PROVENANCE + self.columns

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.all_columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow) for c in self.all_columns])


FLOWS = Kind(
    "flows",
    (
        _c("offset", "BIGINT", "byte offset of the line, to quote it back"),
        _c("ts", "TIMESTAMP", "session time, UTC when the zone is known"),
        _c("src_ip", "VARCHAR"),
        _c("src_port", "INTEGER"),
        _c("dst_ip", "VARCHAR"),
        _c("dst_port", "INTEGER"),
        _c("proto", "INTEGER", "IP protocol number"),
        _c("action", "VARCHAR", "vendor action word (accept, deny, close, timeout ...)"),
        _c("service", "VARCHAR"),
        _c("bytes_out", "BIGINT"),
        _c("bytes_in", "BIGINT"),
        _c("pkts_in", "BIGINT"),
        _c("duration", "BIGINT", "seconds"),
        _c("vendor", "VARCHAR"),
    ),
    "Network sessions from firewall traffic logs",
)

NET_ALERTS = Kind(
    "net_alerts",
    (
        _c("offset", "BIGINT"),
        _c("ts", "TIMESTAMP"),
        _c("src_ip", "VARCHAR"),
        _c("src_port", "INTEGER"),
        _c("dst_ip", "VARCHAR"),
        _c("dst_port", "INTEGER"),
        _c("proto", "INTEGER"),
        _c("signature", "VARCHAR", "signature / attack name as the sensor printed it"),
        _c("signature_id", "VARCHAR"),
        _c("severity", "VARCHAR"),
        _c("action", "VARCHAR"),
        _c("vendor", "VARCHAR"),
    ),
    "IPS/IDS alerts",
)

SOCKETS = Kind(
    "sockets",
    (
        _c("proto", "VARCHAR", "TCP or UDP"),
        _c("local_ip", "VARCHAR"),
        _c("local_port", "INTEGER"),
        _c("remote_ip", "VARCHAR"),
        _c("remote_port", "INTEGER"),
        _c("state", "VARCHAR", "state word as printed (English on zh-CN too)"),
        _c("listening", "BOOLEAN", "TCP with foreign address 0.0.0.0:0 / [::]:0"),
        _c("pid", "INTEGER"),
        _c("image", "VARCHAR", "netstat -b image name"),
        _c("component", "VARCHAR", "netstat -b service/component line"),
    ),
    "Connections and listeners from netstat",
)

PROCESSES = Kind(
    "processes",
    (
        _c("pid", "INTEGER"),
        _c("ppid", "INTEGER"),
        _c("name", "VARCHAR", "image name (tasklist truncates at 25 characters)"),
        _c("image_path", "VARCHAR"),
        _c("command_line", "VARCHAR"),
        _c("session_name", "VARCHAR"),
        _c("session", "INTEGER"),
        _c("mem_kb", "BIGINT"),
        _c("status", "VARCHAR"),
        _c("user", "VARCHAR"),
        _c("cpu_time", "VARCHAR"),
        _c("window_title", "VARCHAR"),
        _c("services", "VARCHAR[]"),
        _c("created", "TIMESTAMP", "UTC"),
        _c("source", "VARCHAR", "tasklist, tasklist-v, tasklist-svc, tasklist-csv, wmic"),
    ),
    "Running processes from tasklist / wmic",
)

HOST_INFO = Kind(
    "host_info",
    (
        _c("hostname", "VARCHAR"),
        _c("os_name", "VARCHAR"),
        _c("os_version", "VARCHAR", "as printed, e.g. 6.1.7601 Service Pack 1 Build 7601"),
        _c("os_build", "INTEGER"),
        _c("service_pack", "VARCHAR"),
        _c("system_type", "VARCHAR"),
        _c("domain", "VARCHAR"),
        _c("install_date", "TIMESTAMP", "local time of the host"),
        _c("boot_time", "TIMESTAMP", "local time of the host"),
        _c("time_zone", "VARCHAR"),
        _c("utc_offset_min", "INTEGER"),
        _c("locale", "VARCHAR", "System Locale line"),
        _c("language", "VARCHAR", "language of the labels: en or zh-CN"),
        _c("ips", "VARCHAR[]", "NIC addresses"),
        _c("hotfixes_declared", "INTEGER", "N of `N Hotfix(s) Installed.`"),
        _c("hotfixes_listed", "INTEGER"),
    ),
    "systeminfo: OS, build and patch summary",
)

HOTFIXES = Kind(
    "hotfixes",
    (
        _c("hotfix", "VARCHAR", "KB number when there is one, else the raw item"),
        _c("raw", "VARCHAR"),
        _c("source", "VARCHAR"),
    ),
    "Installed updates",
)

ASSETS = Kind(
    "assets",
    (
        _c("hostname", "VARCHAR"),
        _c("ip", "VARCHAR"),
        _c("os", "VARCHAR"),
        _c("role", "VARCHAR"),
        _c("owner", "VARCHAR"),
        _c("av_installed", "BOOLEAN"),
        _c("av_forbidden", "BOOLEAN", "the vendor of the business software forbids antivirus"),
        _c("critical_services", "VARCHAR", "business-critical service names, `;`-separated: never stopped by a plan"),
    ),
    "Asset inventory",
)

SMB = Kind(
    "smb",
    (
        _c("offset", "BIGINT"),
        _c("ts", "TIMESTAMP", "UTC when the zone is known"),
        _c("src_ip", "VARCHAR"),
        _c("src_port", "INTEGER"),
        _c("dst_ip", "VARCHAR"),
        _c("dst_port", "INTEGER"),
        _c("activity", "VARCHAR", "tree_connect, file or rpc"),
        _c("path", "VARCHAR", "share (\\\\host\\IPC$) or named pipe / endpoint"),
        _c("name", "VARCHAR", "file name, or RPC operation (CreateServiceW ...)"),
        _c("action", "VARCHAR", "SMB::FILE_OPEN, share type, RPC endpoint (svcctl ...)"),
        _c("vendor", "VARCHAR", "zeek, pcap ..."),
    ),
    "SMB tree connects, file actions and DCE-RPC calls (Zeek smb_mapping/smb_files/dce_rpc, pcaps)",
)

SERVICES = Kind(
    "services",
    (
        _c("name", "VARCHAR", "service (key) name"),
        _c("display_name", "VARCHAR"),
        _c("type", "VARCHAR", "WIN32_OWN_PROCESS, WIN32_SHARE_PROCESS, KERNEL_DRIVER ... as printed"),
        _c("state", "VARCHAR", "RUNNING, STOPPED ..."),
        _c("start_mode", "VARCHAR", "AUTO_START, DEMAND_START, DISABLED / Auto, Manual ..."),
        _c("pid", "INTEGER"),
        _c("binary_path", "VARCHAR", "ImagePath as written (quotes, arguments, %SystemRoot%)"),
        _c("service_dll", "VARCHAR", "Parameters ServiceDll of svchost-hosted services, when collected"),
        _c("group", "VARCHAR", "svchost -k group or load order group"),
        _c("account", "VARCHAR", "SERVICE_START_NAME / StartName"),
        _c("source", "VARCHAR", "sc-queryex, sc-qc, wmic-service, ..."),
    ),
    "Services from sc queryex / sc qc / wmic service",
)

TASKS = Kind(
    "tasks",
    (
        _c("name", "VARCHAR", "task path and name"),
        _c("status", "VARCHAR", "as printed (Ready, 就绪 ...)"),
        _c("enabled", "BOOLEAN"),
        _c("command", "VARCHAR", "Task To Run"),
        _c("arguments", "VARCHAR"),
        _c("run_as", "VARCHAR"),
        _c("author", "VARCHAR"),
        _c("schedule", "VARCHAR", "schedule type / trigger text"),
        _c("next_run", "TIMESTAMP", "host-local"),
        _c("last_run", "TIMESTAMP", "host-local"),
        _c("created", "TIMESTAMP", "host-local, when the listing says"),
        _c("source", "VARCHAR"),
    ),
    "Scheduled tasks (schtasks /query /v, csv or list); one row per task, triggers joined",
)

WMI = Kind(
    "wmi",
    (
        _c("namespace", "VARCHAR"),
        _c("class", "VARCHAR", "__EventFilter, CommandLineEventConsumer, __FilterToConsumerBinding ..."),
        _c("name", "VARCHAR"),
        _c("query", "VARCHAR", "filter WQL"),
        _c("command", "VARCHAR", "consumer CommandLineTemplate / ExecutablePath"),
        _c("script", "VARCHAR", "ActiveScript consumer ScriptText (truncated to 4 KB)"),
        _c("filter", "VARCHAR", "binding: the filter path"),
        _c("consumer", "VARCHAR", "binding: the consumer path"),
        _c("source", "VARCHAR"),
    ),
    "WMI permanent event subscriptions",
)

AUTORUNS = Kind(
    "autoruns",
    (
        _c("location", "VARCHAR", "Entry Location (registry key, folder, Task Scheduler ...)"),
        _c("entry", "VARCHAR"),
        _c("enabled", "BOOLEAN"),
        _c("category", "VARCHAR"),
        _c("description", "VARCHAR"),
        _c("publisher", "VARCHAR"),
        _c("image_path", "VARCHAR"),
        _c("launch", "VARCHAR", "Launch String"),
        _c("signer", "VARCHAR"),
        _c("sha256", "VARCHAR"),
        _c("time", "TIMESTAMP", "entry time as printed (host-local unless -t)"),
        _c("source", "VARCHAR"),
    ),
    "Sysinternals autorunsc entries",
)

FILES = Kind(
    "files",
    (
        _c("path", "VARCHAR", "full path"),
        _c("size", "BIGINT"),
        _c("created", "TIMESTAMP", "host-local; forgeable"),
        _c("modified", "TIMESTAMP", "host-local; forgeable"),
        _c("accessed", "TIMESTAMP"),
        _c("is_dir", "BOOLEAN"),
        _c("md5", "VARCHAR"),
        _c("sha1", "VARCHAR"),
        _c("sha256", "VARCHAR"),
        _c("source", "VARCHAR", "dir, Get-ChildItem, certutil, Get-FileHash"),
    ),
    "Files from directory listings and hash outputs",
)

HOST_CONFIG = Kind(
    "host_config",
    (
        _c("kind", "VARCHAR", "portproxy, user"),
        _c("name", "VARCHAR", "listen address:port / user name"),
        _c("value", "VARCHAR", "connect address:port / account details"),
        _c("source", "VARCHAR"),
    ),
    "Small host settings: netsh portproxy listeners, local users",
)

# Windows event log records. The EventData (or flattened UserData) fields keep their original
# names in one MAP(VARCHAR, VARCHAR) column: DuckDB reads `data['ServiceName']` straight from the
# Parquet map without parsing text per query (a JSON column would be re-parsed by every
# detection and Sigma rule), while the fields every query filters on are promoted to columns.
EVENTS = Kind(
    "events",
    (
        _c("ts", "TIMESTAMP", "System/TimeCreated, UTC"),
        _c("channel", "VARCHAR", "Security, System, Microsoft-Windows-Sysmon/Operational ..."),
        _c("provider", "VARCHAR", "provider name"),
        _c("event_id", "INTEGER"),
        _c("computer", "VARCHAR", "System/Computer as written (FQDN); `host` holds the short upper-case name"),
        _c("record_id", "BIGINT", "EventRecordID"),
        _c("sid", "VARCHAR", "System/Security/@UserID when present"),
        _c("user", "VARCHAR", "EventData User, or SubjectDomainName\\SubjectUserName"),
        _c("data", "MAP(VARCHAR, VARCHAR)", "EventData / UserData fields under their original names"),
        _c("source", "VARCHAR", "evtx, winlogbeat, mordor, xml"),
    ),
    "Windows event log records (EVTX, Winlogbeat/Mordor JSON lines, Event Viewer XML)",
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        FLOWS,
        NET_ALERTS,
        SMB,
        SOCKETS,
        PROCESSES,
        HOST_INFO,
        HOTFIXES,
        ASSETS,
        SERVICES,
        TASKS,
        WMI,
        AUTORUNS,
        FILES,
        HOST_CONFIG,
        EVENTS,
    )
}


SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class EvidenceRef:
    kind: str  # record kind (table)
    evidence_id: int
    line: int


def evidence_refs(kind: str, rows: list[dict[str, Any]] | None, limit: int = 5) -> list[EvidenceRef]:
    """References from query rows holding `evidence_id` and `line`."""
    return [EvidenceRef(kind, int(r["evidence_id"]), int(r["line"])) for r in (rows or [])[:limit]]


@dataclass
class Finding:
    """One thing a detector concluded about one host, with the records that show it.

    `title` is a message key rendered in the output language with `params`; evidence
    strings inside `params` are attacker-controlled and escaped by every renderer.
    """

    rule: str
    host: str
    severity: str
    attack: str  # ATT&CK technique id
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    evidence: list[EvidenceRef] = field(default_factory=list)
    ip: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)
