"""Asset inventory CSV: English or Chinese headers, Excel's GBK, yes/no words, bad rows."""

from __future__ import annotations

from tests.conftest import encodings
from wormhunt.sources import assets
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode

ZH = """主机名,IP地址,操作系统,角色,负责人,已安装杀毒,厂商禁止杀毒
CLUSTER01,172.16.101.13,Windows Server 2008 R2,集群管理服务器,王伟,否,是
PC-16-078,192.168.16.78,Windows 7,员工电脑,李娜,是,否
,,,,,,
,192.168.16.99,,打印机,,,
"""
EN = """Host,IP Address,Role,Owner,Antivirus,Vendor forbids AV,Notes
FS01,172.16.101.20,File server,Zhang Min,yes,no,"mapped as S:, T:"
"""


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    assets.parse(text, sink)
    return sink


def test_chinese_headers_in_every_encoding() -> None:
    for name, raw in encodings(ZH).items():
        det = detect_head(raw, complete=True)
        assert det.format is not None and det.format.name == "assets", name
        rows = parse(decode(raw).text).of("assets")
        assert [r["hostname"] for r in rows] == ["CLUSTER01", "PC-16-078", None], name
        cluster = rows[0]
        assert cluster["ip"] == "172.16.101.13" and cluster["role"] == "集群管理服务器"
        assert cluster["av_installed"] is False and cluster["av_forbidden"] is True
        assert rows[1]["av_installed"] is True and rows[1]["av_forbidden"] is False
        # A row with only an IP is kept under its IP.
        assert rows[2]["host"] == "192.168.16.99" and rows[2]["line"] == 5


def test_english_headers_and_quoted_commas() -> None:
    sink = parse(EN)
    (row,) = sink.of("assets")
    assert (row["hostname"], row["ip"], row["role"], row["owner"]) == (
        "FS01",
        "172.16.101.20",
        "File server",
        "Zhang Min",
    )
    assert row["av_installed"] is True and row["av_forbidden"] is False and row["os"] is None


def test_bad_rows_are_counted() -> None:
    sink = parse(ZH + '"unterminated,1.2.3.4\n')
    assert sink.skip_counts["row without hostname or IP"] == 1  # the empty ,,,,,, row
    assert sink.skip_counts["bad CSV row"] == 1 and len(sink.of("assets")) == 3


def test_a_csv_without_host_columns_is_not_an_inventory() -> None:
    assert assets.sniff("date,amount,currency\n2019-01-01,3,CNY\n") == 0.0
    sink = parse("date,amount\n1,2\n")
    assert sink.of("assets") == [] and sink.skip_counts == {"no recognisable header": 2}


def test_optional_critical_services_column() -> None:
    """The optional business-critical services column (en or zh-CN header, `;` or `；`)."""
    en = parse(
        "Host,IP Address,Role,Vendor forbids AV,Critical services\n"
        "CLUSTER01,172.16.101.13,cluster,yes,ClusSvc; MSSQLSERVER\n"
    )
    (row,) = en.of("assets")
    assert row["critical_services"] == "ClusSvc;MSSQLSERVER" and row["av_forbidden"] is True
    zh = parse("主机名,IP地址,关键服务\nDB01,10.0.0.5,MSSQLSERVER；SQLAgent\n")
    assert zh.of("assets")[0]["critical_services"] == "MSSQLSERVER;SQLAgent"
    assert parse(EN).of("assets")[0]["critical_services"] is None  # the column is optional
