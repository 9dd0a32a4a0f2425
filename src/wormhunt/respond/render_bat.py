"""A plan as a batch file for hosts without PowerShell, built-in commands only (reg, schtasks,
sc, taskkill, wmic, certutil, copy, del, rd, netsh, net, icacls), and its rollback.

Dry-run unless run as `plan.bat /execute` (the EXECUTE, WORKDIR, DISABLE_SMB1 and ACK_VENDOR
variables are cleared at the start, so an inherited environment cannot switch anything on;
`/disable-smb1` and `/ack-vendor` are arguments too). The work folder is a new folder with a
random name, created with an ACL of Administrators and SYSTEM only; if it exists the script
stops. Output goes to a log in the work folder. The first failing command jumps to :unexpected
and stops.

Quoting: cmd.exe has no way to quote a double quote, a line break or a control character
inside an argument, so a target holding one is not rendered: the step says so and, with
/execute, stops (use plan.ps1 for it). Every other value appears only inside double quotes,
with `%` doubled; delayed expansion is off, so `!` is literal; `&|<>^()` are literal inside
quotes. A value that reaches a child cmd.exe (the command of `for /f ('...')` and either side
of a pipe), which expands it again, must not hold any of `%^&|<>!`: such a step is refused.
File and folder paths must be absolute `X:\\...` paths without wildcards, `..` or a trailing dot
(`plan.path_refusal`), or the step is refused.
No command uses a wildcard, `/s` or `/q`: files are deleted one by one after their copy
in the quarantine folder matched their sha256 (certutil), and folders are removed with `rd`
only when empty.

The batch file cannot check Authenticode signatures: a file under System32 is quarantined only
when the plan knows its sha256 from the evidence and the file still has it.
"""

from __future__ import annotations

import re
from typing import Any

from wormhunt.respond.plan import Plan, Step, in_system32, path_refusal

_BAD = re.compile('[\x00-\x1f\x7f"]')
# what a child cmd.exe (for /f command, pipe) would expand or interpret even inside quotes
_CHILD_BAD = re.compile(r"[%^&|<>!]")


class UnsafeValue(ValueError):
    pass


def bat_str(value: Any) -> str:
    """A double-quoted cmd.exe argument, `%` doubled; raises UnsafeValue when cmd.exe cannot quote it."""
    text = str(value)
    if _BAD.search(text):
        raise UnsafeValue("cmd.exe cannot quote this value")
    return '"' + text.replace("%", "%%") + '"'


def bat_ok(value: Any) -> bool:
    return not _BAD.search(str(value))


def child_str(value: Any) -> str:
    """A double-quoted argument for a command a child cmd.exe runs (`for /f ('...')`, a pipe)."""
    if _CHILD_BAD.search(str(value)):
        raise UnsafeValue("a child cmd.exe would expand this value")
    return bat_str(value)


def bat_path(value: Any, directory: bool = False) -> str:
    """A quoted file or folder path: absolute, no wildcard, no `..`, no trailing dot or space."""
    if path_refusal(str(value), directory=directory):
        raise UnsafeValue("not a plain absolute path")
    return bat_str(value)


def _wql(value: str) -> str:
    """A value inside a WQL single-quoted string (wmic where clause): backslashes doubled."""
    return value.replace("\\", "\\\\")


PRELUDE = r"""@echo off
setlocal EnableExtensions DisableDelayedExpansion
chcp 65001 >nul
rem wormhunt remediation plan (batch). Dry-run unless run as: plan.bat /execute. Review every step first.
set "EXECUTE="
set "DISABLE_SMB1="
set "ACK_VENDOR="
set "WORKDIR="
:args
if "%~1"=="" goto :args_done
if /i "%~1"=="/execute" set "EXECUTE=1"
if /i "%~1"=="/disable-smb1" set "DISABLE_SMB1=1"
if /i "%~1"=="/ack-vendor" set "ACK_VENDOR=1"
shift
goto :args
:args_done
set "WORKDIR=%SystemDrive%\wormhunt-bat-%RANDOM%%RANDOM%%RANDOM%"
if exist "%WORKDIR%" (echo UNEXPECTED: "%WORKDIR%" exists already& exit /b 2)
mkdir "%WORKDIR%" || (echo UNEXPECTED: cannot create the work folder& exit /b 2)
icacls "%WORKDIR%" /inheritance:r /grant:r *S-1-5-32-544:(OI)(CI)F *S-1-5-18:(OI)(CI)F >nul || goto :noacl
mkdir "%WORKDIR%\quarantine"
set "LOG=%WORKDIR%\plan-bat.log"
set "Q=%WORKDIR%\quarantine"
echo work folder: "%WORKDIR%" (rollback.bat takes it as its first argument)
if "%EXECUTE%"=="1" (echo EXECUTE mode>>"%LOG%") else (echo DRY-RUN: nothing will change, run plan.bat /execute to act)
"""

EPILOGUE = r"""
echo plan finished
echo plan finished>>"%LOG%"
endlocal
exit /b 0

:noacl
echo UNEXPECTED: cannot restrict the ACL of "%WORKDIR%": stopping, nothing was done.
endlocal
exit /b 2

:unexpected
echo UNEXPECTED result: stopping here, nothing after this step was run. See "%LOG%".
echo UNEXPECTED result>>"%LOG%"
endlocal
exit /b 2
"""


def _step_lines(s: Step, n: int) -> list[str]:
    t = s.target
    a = s.action
    label = f"{s.id}_done"
    out = [f"rem ---- {s.id} {a}"]

    def guarded(desc_args: list[str], cmds: list[str]) -> None:
        out.append("echo [" + s.id + "] " + a + " " + " ".join(desc_args))
        out.append(f'if not "%EXECUTE%"=="1" goto :{label}')
        for c in cmds:
            out.append(c + ' >>"%LOG%" 2>&1 || goto :unexpected')
        out.append(f":{label}")

    def refuse() -> None:
        out.append(f"echo [{s.id}] {a}: the target holds a quote, a control character, a character a child cmd.exe "
                   "expands, or is not a plain absolute path: use plan.ps1 for it or act by hand")  # fmt: skip
        out.append('if "%EXECUTE%"=="1" goto :unexpected')

    try:
        if a == "contain":
            cmds = ['netsh advfirewall firewall add rule name="wormhunt-block-smb-out" dir=out action=block '
                    "protocol=TCP remoteport=445,139"]  # fmt: skip
            if t.get("inbound"):
                cmds.append('netsh advfirewall firewall add rule name="wormhunt-block-smb-in" dir=in action=block '
                            "protocol=TCP localport=445,139")  # fmt: skip
            guarded(["block TCP 445/139"], cmds)
        elif a == "backup":
            cmds = [
                'netstat -ano >"%WORKDIR%\\netstat-before.txt"',
                'tasklist /v >"%WORKDIR%\\tasklist-before.txt"',
                'netsh interface portproxy show all >"%WORKDIR%\\portproxy-before.txt"',
                'reg export "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters" '
                '"%WORKDIR%\\smb1.reg" /y',
            ]
            for i, name in enumerate(t.get("services", []), 1):
                key = bat_str("HKLM\\SYSTEM\\CurrentControlSet\\Services\\" + name)
                cmds.append(f'reg export {key} "%WORKDIR%\\service-{i}.reg" /y')
            for i, name in enumerate(t.get("tasks", []), 1):
                cmds.append(f'schtasks /Query /TN {bat_str(name)} /XML >"%WORKDIR%\\task-{i}.xml"')
            for i, r in enumerate(t.get("registry", []), 1):
                cmds.append(f'reg export {bat_str(r["key"])} "%WORKDIR%\\registry-{i}.reg" /y')
            for i, name in enumerate(t.get("users", []), 1):
                cmds.append(f'net user {bat_str(name)} >"%WORKDIR%\\user-{i}.txt"')
            guarded(["service keys, tasks, portproxy, users, SMB key"], cmds)
        elif a == "disable_task":
            guarded([bat_str(t["name"])], [f"schtasks /Change /TN {bat_str(t['name'])} /DISABLE"])
        elif a == "delete_task":
            guarded([bat_str(t["name"])], [f"schtasks /Delete /TN {bat_str(t['name'])} /F"])
        elif a == "disable_service":
            guarded([bat_str(t["name"])], [f"sc config {bat_str(t['name'])} start= disabled"])
        elif a == "stop_service":
            name = child_str(t["name"])  # `sc query NAME | find`: the pipe's child cmd.exe expands it again
            out.append(f"echo [{s.id}] stop service {name}")
            out.append(f'if not "%EXECUTE%"=="1" goto :{label}')
            out.append(f'sc query {name} | find "STOPPED" >nul && goto :{label}')
            out.append(f'sc stop {name} >>"%LOG%" 2>&1')
            out.append("ping -n 6 127.0.0.1 >nul")
            out.append(f"sc query {name} | find \"STOPPED\" >nul || goto :unexpected")
            out.append(f":{label}")
        elif a == "delete_service":
            guarded([bat_str(t["name"])], [f"sc delete {bat_str(t['name'])}"])
        elif a == "kill_tree" and t.get("kind") == "service_host":
            out.append(f"echo [{s.id}] the service host of {bat_str(t['name'])} is not killed by the batch file: "
                       "a shared svchost would take other services down; plan.ps1 checks that, or reboot")  # fmt: skip
        elif a in ("kill_tree", "kill_scripts"):
            # by PID *and* full image path in one WQL query, so a reused PID running something else is
            # not matched; only the process itself (taskkill /T would take children by a parent PID
            # that may have been reused): plan.ps1 kills the tree, checking creation times
            image = t.get("image") or ""
            if not image or "'" in image or path_refusal(image):
                raise UnsafeValue("image path")
            where = f"ProcessId={int(t['pid'])} and ExecutablePath='{_wql(image)}'"
            guarded([f"PID {int(t['pid'])}", bat_str(image)], [f"wmic process where {bat_str(where)} call terminate"])
        elif a == "kill_process":
            path = t["path"]
            if "'" in path:
                raise UnsafeValue("quote in a WQL value")
            guarded([bat_str(path)],
                    [f"wmic process where {bat_str('ExecutablePath=' + chr(39) + _wql(path) + chr(39))} "
                     "call terminate"])  # fmt: skip
        elif a == "remove_wmi":
            out.append(f"echo [{s.id}] WMI objects are removed by plan.ps1 (wmic cannot do it safely)")
            out.append('if "%EXECUTE%"=="1" goto :unexpected')
        elif a == "remove_registry":
            guarded([bat_str(t["key"]), bat_str(t["value"])],
                    [f"reg delete {bat_str(t['key'])} /v {bat_str(t['value'])} /f"])  # fmt: skip
        elif a == "quarantine" and t.get("kind") == "directory":
            guarded([bat_path(t["path"], True)], [f"rd {bat_path(t['path'], True)}"])
            out.insert(1, f"rem {s.id}: rd without /s removes the folder only once the files above emptied it")
        elif a == "quarantine":
            path = t["path"]
            sha = t.get("sha256") or ""
            q = f'"%Q%\\{n:04d}.quarantined"'
            if in_system32(path) and not sha:
                out.append(f"echo [{s.id}] {bat_str(path)} is under System32 and its sha256 is unknown: use plan.ps1")
                out.append('if "%EXECUTE%"=="1" goto :unexpected')
            else:
                if sha and ("'" in path or not re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
                    raise UnsafeValue("quote in a for /f command")
                src = bat_path(path)
                if sha:
                    child_str(path)  # the for /f command runs in a child cmd.exe that expands % again
                out.append(f"echo [{s.id}] quarantine {src}")
                out.append(f'if not "%EXECUTE%"=="1" goto :{label}')
                out.append(f"if not exist {src} echo [{s.id}] not present")
                out.append(f"if not exist {src} goto :{label}")
                if sha:  # certutil prints the hash with spaces on Windows 7: strip them before comparing
                    out.append('set "H="')
                    out.append(f"for /f \"skip=1 delims=\" %%h in ('certutil -hashfile {src} SHA256') "
                               'do if not defined H set "H=%%h"')  # fmt: skip
                    out.append('if defined H set "H=%H: =%"')
                    out.append(f'if /i not "%H%"=="{sha.lower()}" goto :unexpected')
                out.append(f'copy /b /y {src} {q} >>"%LOG%" 2>&1 || goto :unexpected')
                out.append(f'fc /b {src} {q} >>"%LOG%" 2>&1 || goto :unexpected')
                out.append(f'(echo {n:04d}.quarantined {src})>>"%Q%\\manifest.txt"')
                out.append(f'certutil -hashfile {q} SHA256 >>"%Q%\\manifest.txt" 2>&1 || goto :unexpected')
                out.append(f'del /f {src} >>"%LOG%" 2>&1 || goto :unexpected')
                out.append(f"if exist {src} goto :unexpected")
                out.append(f":{label}")
        elif a == "remove_portproxy":
            port, addr = str(t["listen_port"]), str(t["listen_address"])
            if not (re.fullmatch(r"\d{1,5}", port) and re.fullmatch(r"[0-9a-fA-F.:*]+", addr)):
                raise UnsafeValue("listen address")
            guarded([f"{addr}:{port}"],
                    [f"netsh interface portproxy delete v4tov4 listenport={port} listenaddress={addr}"])  # fmt: skip
        elif a == "remove_user":
            guarded([bat_str(t["name"])], [f"net user {bat_str(t['name'])} /active:no"])
        elif a == "disable_smb1":
            out.append(f"echo [{s.id}] SMBv1: run with /disable-smb1 to disable the SMBv1 server")
            out.append(f'if not "%DISABLE_SMB1%"=="1" goto :{label}')
            guarded(["SMBv1 server"], ['reg add "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters" '
                                       "/v SMB1 /t REG_DWORD /d 0 /f"])  # fmt: skip
        elif a == "patch":
            out.append(f"echo [{s.id}] install MS17-010 for this build (check srv.sys) and reboot")
        elif a == "verify":
            out.append(f"echo [{s.id}] verify: waiting 30 s, then checking that nothing regrew")
            out.append(f'if not "%EXECUTE%"=="1" goto :{label}')
            out.append("ping -n 31 127.0.0.1 >nul")
            for p in t.get("files", []):
                if bat_ok(p) and not path_refusal(p):
                    out.append(f"if exist {bat_str(p)} goto :unexpected")
            for p in t.get("directories", []):
                if bat_ok(p) and not path_refusal(p, directory=True):
                    out.append(f"if exist {bat_str(p)} goto :unexpected")
            for name in t.get("services", []):
                if bat_ok(name):
                    out.append(f"sc query {bat_str(name)} >nul 2>&1 && goto :unexpected")
            for name in t.get("tasks", []):
                if bat_ok(name):
                    out.append(f"schtasks /Query /TN {bat_str(name)} >nul 2>&1 && goto :unexpected")
            out.append('icacls "%Q%" /inheritance:r /grant:r *S-1-5-32-544:(OI)(CI)F *S-1-5-18:(OI)(CI)F '
                       '>>"%LOG%" 2>&1')  # fmt: skip
            out.append("echo verified: collect and triage again now, after a reboot and after 24 h")
            out.append(f":{label}")
    except UnsafeValue:
        out = [f"rem ---- {s.id} {a}"]
        refuse()
    return out


def render(plan: Plan) -> str:
    lines = [PRELUDE.rstrip("\n")]
    if bat_ok(plan.host):
        lines.append(f'if "%EXECUTE%"=="1" if /i not "%COMPUTERNAME%"=={bat_str(plan.host)} goto :unexpected')
    if plan.conservative:
        lines += [
            "echo WARNING: VENDOR FORBIDS ANTIVIRUS ON THIS HOST - conservative plan, exact paths only.",
            "echo Confirm each step with the vendor, then also pass /ack-vendor.",
            'if "%EXECUTE%"=="1" if not "%ACK_VENDOR%"=="1" goto :unexpected',
        ]
    for n, s in enumerate(plan.steps, 1):
        lines += _step_lines(s, n)
    lines.append(EPILOGUE)
    return "\r\n".join("\n".join(lines).split("\n"))


def render_rollback(plan: Plan) -> str:
    lines = [
        "@echo off",
        "setlocal EnableExtensions DisableDelayedExpansion",
        "rem wormhunt rollback (batch): rollback.bat WORKDIR [/execute]. WORKDIR is the folder plan.bat printed.",
        'set "EXECUTE="',
        'set "WORKDIR=%~1"',
        'if /i "%~2"=="/execute" set "EXECUTE=1"',
        'if not defined WORKDIR (echo usage: rollback.bat WORKDIR [/execute]& exit /b 2)',
        'set "Q=%WORKDIR%\\quarantine"',
    ]
    back = next((s for s in plan.steps if s.action == "backup"), None)
    for n, s in enumerate(plan.steps, 1):
        t = s.target
        if s.action == "quarantine" and t.get("kind") == "file" and bat_ok(t["path"]) and not path_refusal(t["path"]):
            src = f'"%Q%\\{n:04d}.quarantined"'
            lines.append(f"echo restore {bat_str(t['path'])}")
            lines.append(f'if "%EXECUTE%"=="1" if exist {src} copy /b /y {src} {bat_str(t["path"])}')
        elif s.action == "remove_user" and bat_ok(t["name"]):
            lines.append(f'if "%EXECUTE%"=="1" net user {bat_str(t["name"])} /active:yes')
        elif s.action == "contain":
            lines.append('if "%EXECUTE%"=="1" netsh advfirewall firewall delete rule name="wormhunt-block-smb-out"')
            lines.append('if "%EXECUTE%"=="1" netsh advfirewall firewall delete rule name="wormhunt-block-smb-in"')
    if back:
        for i in range(1, len(back.target.get("services", [])) + 1):
            reg = f'"%WORKDIR%\\service-{i}.reg"'
            lines.append(f'if "%EXECUTE%"=="1" if exist {reg} reg import {reg}')
        for i, name in enumerate(back.target.get("tasks", []), 1):
            if bat_ok(name):
                lines.append(f'if "%EXECUTE%"=="1" if exist "%WORKDIR%\\task-{i}.xml" schtasks /Create /TN '
                             f'{bat_str(name)} /XML "%WORKDIR%\\task-{i}.xml" /F')  # fmt: skip
        for i, _ in enumerate(back.target.get("registry", []), 1):
            reg = f'"%WORKDIR%\\registry-{i}.reg"'
            lines.append(f'if "%EXECUTE%"=="1" if exist {reg} reg import {reg}')
        lines.append('if "%EXECUTE%"=="1" if exist "%WORKDIR%\\smb1.reg" reg import "%WORKDIR%\\smb1.reg"')
    lines += ["echo rollback finished; reboot for restored services to start", "endlocal", "exit /b 0", ""]
    return "\r\n".join(lines)
