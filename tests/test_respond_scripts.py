"""Acceptance (issue 6), the generated scripts, structurally (no PowerShell parser can be
installed from PyPI, Debian or npm on this machine, see docs/respond.md): dry-run by default,
every destructive command preceded by its backup, no wildcard deletes, no kill by name of a
protected process, PowerShell 2.0 syntax only, and evidence that cannot break out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wormhunt.analyze import analyze
from wormhunt.ingest import ingest
from wormhunt.respond import render_bat, render_ps1
from wormhunt.respond.plan import Plan, Reason, Step, assert_order, build_plans
from wormhunt.simulate import simulate
from wormhunt.store import Case

FAMILIES = ["wannamine3", "wannamine4", "wannamine-fileless", "dtlminer"]
PS_QUOTES = "'\u2018\u2019\u201a\u201b"


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> list[Plan]:
    out = []
    for family in FAMILIES:
        tmp = tmp_path_factory.mktemp(family)
        simulate(tmp / "ev", hosts=6, seed=7, days=1, lines=150, family=family, locale="zh-CN")
        with Case(tmp / "case") as case:
            ingest(case, [tmp / "ev" / "hosts"])
            out += [p for p in build_plans(case, analyze(case)).values() if p.steps]
    assert len(out) >= 4
    return out


def ps_code(script: str) -> tuple[str, list[str]]:
    """The script with every single-quoted literal replaced by '' (PowerShell rules: a quote
    character doubled is a quote; the typographic quotes count), and the literals' values."""
    code, literals, i = [], [], 0
    while i < len(script):
        ch = script[i]
        if ch == "#" and (i == 0 or script[i - 1] in " \t\n"):  # a comment runs to the end of the line
            end = script.find("\n", i)
            end = len(script) if end < 0 else end
            code.append(script[i:end])
            i = end
        elif ch in PS_QUOTES:
            j, buf = i + 1, []
            while True:
                if script[j] in PS_QUOTES:
                    if j + 1 < len(script) and script[j + 1] in PS_QUOTES:
                        buf.append(script[j])
                        j += 2
                        continue
                    break
                buf.append(script[j])
                j += 1
            literals.append("".join(buf))
            code.append("''")
            i = j + 1
        else:
            code.append(ch)
            i += 1
    return "".join(code), literals


def body(script: str) -> list[str]:
    """The generated part of plan.ps1 (after the helper functions)."""
    return script[script.index("$PlanHost = ") :].splitlines()


def test_ps1_dry_run_default_and_powershell2(plans: list[Plan]) -> None:
    for plan in plans:
        ps1 = render_ps1.render(plan)
        code, _ = ps_code(ps1)
        assert "[switch]$Execute" in ps1 and "Start-Transcript" in ps1 and "exit 2" in ps1
        for bad in ("::new(", "ConvertTo-Json", "Compress-Archive", "-Depth", "Get-CimInstance", "$PSItem",
                    " -in ", " -notin ", "[ordered]", "class ", "Get-AuthenticodeSignature -LiteralPath"):  # fmt: skip
            assert bad not in code, bad
        destructive = re.compile(
            r"(Disable-Svc|Stop-Svc|Delete-Svc|Disable-TaskObj|Delete-TaskObj|Kill-|Remove-Wmi|Quarantine-|"
            r"'delete'|'/active:no'|Set-ItemProperty|'add', 'rule')"
        )
        depth = 0
        for line in body(ps1):
            stripped = line.strip()
            if stripped.startswith(("if ($Execute) {", "if ($DisableSMBv1) {")):
                depth += 1
            elif stripped.startswith("}") and depth:
                depth -= 1
            elif destructive.search(line):
                assert stripped.startswith("Act ") or depth, line  # only ever run with -Execute


def test_ps1_backup_precedes_every_change(plans: list[Plan]) -> None:
    for plan in plans:
        lines = body(render_ps1.render(plan))
        text = "\n".join(lines)
        for verb, backup in (("Disable-Svc", "Backup-ServiceKey"), ("Stop-Svc", "Backup-ServiceKey"),
                             ("Delete-Svc", "Backup-ServiceKey"), ("Disable-TaskObj", "Backup-Task"),
                             ("Delete-TaskObj", "Backup-Task")):  # fmt: skip
            for m in re.finditer(verb + r" ('(?:[^']|'')*')", text):
                first = text.find(f"{backup} {m.group(1)}")
                assert 0 <= first < m.start(), (verb, m.group(1))
        for m in re.finditer(r"Remove-WmiObj ('(?:[^']|'')*') ('(?:[^']|'')*')", text):
            assert 0 <= text.find(f"Backup-Wmi {m.group(1)} {m.group(2)}") < m.start()
        for m in re.finditer(r"@\('delete', ('(?:[^']|'')*'), '/v'", text):
            assert 0 <= text.find(f"Backup-RegKey {m.group(1)}") < m.start()
    # the quarantine copies and checks the hash before it removes
    fn = render_ps1.PRELUDE[render_ps1.PRELUDE.index("function Quarantine-File") :]
    fn = fn[: fn.index("\n}\n")]
    assert fn.index("Copy-Item") < fn.index("(Hash-File $dest) -ne $hash") < fn.index("Remove-Item")
    assert "Get-AuthenticodeSignature" in fn  # a validly signed System32 file is never touched


def test_no_wildcard_delete_and_no_kill_by_name(plans: list[Plan]) -> None:
    for plan in plans:
        ps1, bat = render_ps1.render(plan), render_bat.render(plan)
        code, _ = ps_code(ps1)
        for line in code.splitlines():
            if "Remove-Item" in line:
                assert "-LiteralPath" in line and "-Recurse" not in line and "*" not in line, line
            assert "Stop-Process -Name" not in line and "taskkill" not in line.lower()
        for line in bat.splitlines():
            low = line.lower()
            if re.search(r"\b(del|erase|rd|rmdir)\b ", low) and not low.startswith(("echo", "rem", "(echo")):
                assert "*" not in line and "?" not in line and " /s" not in low and " /q" not in low, line
            assert "/im " not in low, line  # taskkill only ever by /PID
            if "taskkill" in low:
                assert "/pid " in low, line
            if "wmic process where" in low:
                assert "executablepath=" in low and " like " not in low, line
                if re.search(r'where "processid=\d+ and executablepath=', low):
                    continue  # one PID, checked to still run the image the evidence showed
                name = line.split("ExecutablePath='", 1)[1].split("'", 1)[0].rsplit("\\\\", 1)[-1].lower()
                assert name not in {"svchost.exe", "rundll32.exe", "lsass.exe", "csrss.exe", "services.exe",
                                    "smss.exe", "wininit.exe", "winlogon.exe"}, line  # fmt: skip


def test_bat_dry_run_default(plans: list[Plan]) -> None:
    destructive = re.compile(
        r"^(sc (config|stop|delete)|schtasks /(change|delete)|taskkill|wmic process|reg (delete|add)|"
        r"del |rd |netsh (advfirewall firewall add|interface portproxy delete)|net user|copy )"
    )
    for plan in plans:
        bat = render_bat.render(plan)
        assert bat.startswith("@echo off") and "DisableDelayedExpansion" in bat
        guarded = False
        for line in bat.splitlines():
            if line.startswith("rem ---- "):
                guarded = False
            if line.startswith('if not "%EXECUTE%"=="1" goto :'):
                guarded = True
            if destructive.search(line.lower()):
                assert guarded, line


EVIL = [
    'evil" & calc.exe & "',
    "it's'; calc.exe; '",
    "x\u2019; calc.exe; \u2019",
    "$(calc.exe)`calc.exe`",
    "100%PATH%calc.exe%",
    "line\r\ncalc.exe",
    "a&calc.exe|b^c<d>e!f",
]


def evil_plan() -> Plan:
    why = [Reason("finding", "host.known_worm_persistence", "test", ())]
    steps: list[Step] = []
    covers = []
    for i, v in enumerate(EVIL):
        covers += [f"service:{v.lower()}", f"task:\\{v.lower()}", f"user:{v.lower()}"]
        steps += [
            Step("x", "disable_task", {"kind": "task", "name": "\\" + v}, why),
            Step("x", "disable_service", {"kind": "service", "name": v}, why),
            Step("x", "stop_service", {"kind": "service", "name": v}, why),
            Step("x", "kill_tree", {"kind": "process", "pid": 1000 + i, "name": "a.exe",
                                    "image": f"C:\\t\\{v}.exe"}, why),
            Step("x", "kill_process", {"kind": "image", "path": f"C:\\t\\{v}.exe"}, why),
            Step("x", "delete_service", {"kind": "service", "name": v}, why),
            Step("x", "delete_task", {"kind": "task", "name": "\\" + v}, why),
            Step("x", "quarantine", {"kind": "file", "path": f"C:\\t\\{v}.dll"}, why),
            Step("x", "remove_user", {"kind": "user", "name": v}, why),
        ]
    steps.insert(0, Step("x", "backup", {"kind": "backup", "covers": covers, "services": EVIL,
                                         "tasks": ["\\" + v for v in EVIL], "users": EVIL}, why))  # fmt: skip
    files = [f"C:\\t\\{v}.dll" for v in EVIL]
    steps.append(Step("x", "verify", {"kind": "verify", "services": EVIL, "files": files}, why))
    order = ["backup", "disable_task", "disable_service", "stop_service", "kill_tree", "kill_process",
             "delete_service", "delete_task", "quarantine", "remove_user", "verify"]  # fmt: skip
    steps.sort(key=lambda s: order.index(s.action))
    for n, s in enumerate(steps, 1):
        s.id = f"s{n:02d}"
    assert_order(steps)
    return Plan(host="HOST'$(calc.exe)\"&calc.exe", status="infected", steps=steps)


def test_ps1_evidence_cannot_break_out() -> None:
    plan = evil_plan()
    for script in (render_ps1.render(plan), render_ps1.render_rollback(plan)):
        code, literals = ps_code(script)
        assert "calc.exe" not in code  # only ever inside single-quoted literals
        assert not re.search(r"#[^\n]*calc", script)  # never in a comment
    _, literals = ps_code(render_ps1.render(plan))
    for v in EVIL:
        assert v in literals or f"disable service {v}" in literals  # rendered verbatim, not dropped
    # values with a double quote or a control character never reach a native program
    for line in render_ps1.render(plan).splitlines():
        if "Native 'net.exe'" in line or "& net.exe" in line:
            assert '"' not in "".join(ps_code(line)[1]) and "\r" not in line


def test_bat_evidence_cannot_break_out() -> None:
    plan = evil_plan()
    for script in (render_bat.render(plan), render_bat.render_rollback(plan)):
        for line in script.split("\r\n"):
            outside = re.sub(r'"[^"]*"', '""', line)
            assert "calc.exe" not in outside, line
            assert "\n" not in line and "\r" not in line
    bat = render_bat.render(plan)
    assert '"100%%PATH%%calc.exe%%"' in bat  # % doubled inside quotes
    assert "calc.exe & " not in bat  # the value with a double quote is refused, not rendered
    assert bat.count("use plan.ps1") >= 2


def test_pwsh_parses_when_available(plans: list[Plan], tmp_path: Path) -> None:
    import shutil
    import subprocess

    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if not pwsh:
        pytest.skip("no PowerShell on this machine (not in Debian, PyPI or npm)")
    for i, plan in enumerate([*plans, evil_plan()]):
        for name, text in (("plan", render_ps1.render(plan)), ("rollback", render_ps1.render_rollback(plan))):
            f = tmp_path / f"{name}{i}.ps1"
            f.write_text(text, encoding="utf-8-sig")
            cmd = ("$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile("
                   f"'{f}', [ref]$null, [ref]$e); if ($e.Count) {{ $e; exit 1 }}")  # fmt: skip
            res = subprocess.run([pwsh, "-NoProfile", "-Command", cmd], capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stdout + res.stderr


# -- security review of the renderers ------------------------------------------------------------


def _plan_with(*steps: Step) -> Plan:
    why = [Reason("finding", "host.masquerade", "test", ())]
    all_steps = [Step("s01", "backup", {"kind": "backup", "covers": []}, why)]
    for s in steps:
        s.rationale = why
        all_steps.append(s)
    all_steps.append(Step("sz", "verify", {"kind": "verify", "files": [s.target.get("path") for s in steps
                                                                         if s.action == "quarantine"]}, why))
    for n, s in enumerate(all_steps, 1):
        s.id = f"s{n:02d}"
    return Plan(host="HOST", status="infected", steps=all_steps)


BAD_PATHS = ["C:\\ProgramData\\*.exe", "regsvr32.exe", "C:\\a\\..\\Windows\\System32\\x.dll", "C:\\x\\y.exe.",
             "C:\\x \\y.exe", "\\\\?\\C:\\x\\y.exe", "C:\\x\\y.exe:ads", "\\\\server\\share\\y.exe", "C:\\"]


def test_plan_refuses_relative_wildcard_and_dotted_paths() -> None:
    from wormhunt.respond.plan import path_refusal

    for p in BAD_PATHS:
        assert path_refusal(p), p
    assert path_refusal("C:\\Windows\\AppDiagnostics\\svchost.exe") is None
    assert path_refusal("C:\\Windows\\AppDiagnostics\\", directory=True) is None


def test_renderers_recheck_paths() -> None:
    steps = [Step("x", "quarantine", {"kind": "file", "path": p}, []) for p in BAD_PATHS]
    steps.append(Step("x", "quarantine", {"kind": "directory", "path": "C:\\ProgramData\\*"}, []))
    plan = _plan_with(*steps)
    bat = render_bat.render(plan)
    for line in bat[bat.index("rem ---- ") :].splitlines():
        low = line.lower()
        if low.startswith(("del ", "copy ", "rd ", "if exist", "if not exist", "fc ", "for /f")):
            raise AssertionError(line)
    assert bat.count("use plan.ps1 for it or act by hand") == len(steps)
    assert "copy" not in render_bat.render_rollback(plan).lower()
    ps1 = render_ps1.render(plan)
    assert "Quarantine-File '" not in ps1 and "Quarantine-Dir '" not in ps1
    assert "$PlanFiles = @()" in render_ps1.render_rollback(plan)


def test_bat_refuses_child_cmd_expansion() -> None:
    """`%` doubling is not enough in a pipe or a for /f command: the child cmd.exe expands again."""
    plan = _plan_with(
        Step("x", "stop_service", {"kind": "service", "name": "svc%COMSPEC%"}, []),
        Step("x", "stop_service", {"kind": "service", "name": "svc^&calc"}, []),
        Step("x", "quarantine", {"kind": "file", "path": "C:\\t\\a%PATH%.dll", "sha256": "a" * 64}, []),
        Step("x", "quarantine", {"kind": "file", "path": "C:\\t\\b&c.dll", "sha256": "b" * 64}, []),
        Step("x", "quarantine", {"kind": "file", "path": "C:\\t\\plain.dll", "sha256": "c" * 64}, []),
    )
    bat = render_bat.render(plan)
    pipes = [line for line in bat.splitlines() if " | " in line]
    fors = [line for line in bat.splitlines() if line.startswith("for /f")]
    assert not pipes  # neither service is rendered into a pipe
    assert len(fors) == 1 and "plain.dll" in fors[0]
    for line in pipes + fors:
        assert not re.search(r"[%^&|<>!]", line.split("'")[1] if "'" in line else ""), line


def test_kill_checks_path_and_creation_time() -> None:
    plan = _plan_with(Step("x", "kill_tree", {"kind": "process", "pid": 4242, "name": "svchost.exe",
                                              "image": "C:\\Windows\\Fonts\\svchost.exe",
                                              "created": "2026-01-02T03:04:05Z"}, []))  # fmt: skip
    bat = render_bat.render(plan)
    assert "IMAGENAME" not in bat and "taskkill" not in bat
    assert ('wmic process where "ProcessId=4242 and ExecutablePath=\'C:\\\\Windows\\\\Fonts\\\\svchost.exe\'" '
            "call terminate") in bat  # fmt: skip
    ps1 = render_ps1.render(plan)
    assert "Kill-Tree 4242 'C:\\Windows\\Fonts\\svchost.exe' '2026-01-02T03:04:05Z'" in ps1
    fn = ps1[ps1.index("function Kill-Tree") :]
    fn = fn[: fn.index("\n}\n")]
    assert "($cb -lt $born)" in fn and "$created" in fn  # children only if not older than the parent


def test_ps1_quarantine_dir_skips_reparse_points_and_canonicalises() -> None:
    pre = render_ps1.PRELUDE
    qd = pre[pre.index("function Quarantine-Dir") :]
    qd = qd[: qd.index("\n}\n")]
    assert "@(Get-ChildItem -LiteralPath $d -Force)" in qd and "ReparsePoint" in qd
    assert not re.search(r"Get-ChildItem[^\n]*-Recurse", qd)
    qf = pre[pre.index("function Test-Plain") :]
    qf = qf[: qf.index("function Quarantine-Dir")]
    assert "GetFullPath" in qf and "SysWOW64" in qf and "ReparsePoint" in qf
    assert "$path = Test-Plain $path" in qf


def test_work_folders_and_rollback_sources() -> None:
    plan = _plan_with(Step("x", "quarantine", {"kind": "file", "path": "C:\\t\\a.dll"}, []))
    pre = render_ps1.PRELUDE
    assert pre.index("/inheritance:r") < pre.index("Start-Transcript")
    assert "GetOwner([System.Security.Principal.SecurityIdentifier])" in pre and "NewGuid" in pre
    rb = render_ps1.render_rollback(plan)
    assert "'^\\d{4}\\.quarantined$'" in rb and "$PlanFiles = @('C:\\t\\a.dll')" in rb
    assert rb.index("$PlanFiles = ") < rb.index("Restore-Files }")
    bat = render_bat.render(plan)
    head = bat[: bat.index("rem ---- ")]
    for var in ("EXECUTE", "WORKDIR", "DISABLE_SMB1", "ACK_VENDOR"):
        assert f'set "{var}="' in head  # an inherited environment switches nothing on
    assert 'if /i "%~1"=="/execute" set "EXECUTE=1"' in head and "if not defined WORKDIR" not in head
    assert head.index("icacls") < head.index('set "LOG=')
    assert "%RANDOM%" in head and 'if exist "%WORKDIR%"' in head
    assert 'set "WORKDIR=%~1"' in render_bat.render_rollback(plan)


def test_ps1_native_argument_with_space_and_trailing_backslash_is_refused() -> None:
    assert not render_ps1.native_ok("HKLM\\Software\\a b\\")
    assert render_ps1.native_ok("HKLM\\Software\\ab\\") and render_ps1.native_ok("HKLM\\Software\\a b")
    plan = _plan_with(Step("x", "remove_registry", {"kind": "registry", "key": "HKLM\\Software\\a b\\",
                                                    "value": "x"}, []))  # fmt: skip
    ps1 = render_ps1.render(plan)
    assert "@('delete'" not in ps1 and "handle it by hand" in ps1
