"""A plan as a PowerShell 2.0 script (Windows 7 / Server 2008 R2 as shipped) and its rollback.

- Dry-run unless `-Execute`; everything goes to a transcript (Start-Transcript) in the work
  folder; the first unexpected result stops the script (exit 2).
- Evidence values (service, task, file names …) are attacker-controlled. They appear only as
  single-quoted literals (quotes doubled, including the typographic quotes PowerShell also
  reads as quotes), never in comments, never in double-quoted strings. Where a value must be
  passed to a native program (reg.exe, netsh.exe, net.exe), values holding a double quote or
  a control character are refused, because PowerShell 2.0 does not escape embedded quotes in
  native arguments. Services, tasks, WMI objects and processes go through WMI/COM objects, not
  command lines.
- PowerShell 2.0 has no Compress-Archive and .NET 3.5 has no ZipFile class, so the quarantine is
  a folder: each file is copied under a neutral name, its sha256 checked against the original
  (and the evidence's hash when known) before the original is removed, listed in
  `manifest.csv`, and the folder's ACL is reduced to Administrators and SYSTEM with execute
  denied. When 7-Zip is installed the folder is also packed into `quarantine.zip` (AES-256,
  password `infected`) and the archive is tested; the locked loose copies stay until removed.
- No wildcards: files are removed with -LiteralPath one by one, never -Recurse.
- Only PowerShell 2.0 syntax: no `::new`, no classes, no `-Depth`, no ConvertTo-Json.
"""

from __future__ import annotations

import re
from typing import Any

from wormhunt.respond.plan import Plan, Step, path_refusal

_PS_QUOTES = "'\u2018\u2019\u201a\u201b"
_NATIVE_BAD = re.compile('[\x00-\x1f\x7f"\u201c\u201d\u201e]')


class UnsafeValue(ValueError):
    pass


def ps_str(value: Any) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded or executed."""
    text = str(value)
    if "\x00" in text:
        raise UnsafeValue("NUL in a value")
    return "'" + "".join(ch * 2 if ch in _PS_QUOTES else ch for ch in text) + "'"


def native_ok(value: Any) -> bool:
    """A value PowerShell 2.0 passes to a native program as exactly one argument: no double
    quote or control character, and not whitespace together with a trailing backslash (PS 2
    wraps it in quotes and the backslash then escapes the closing quote, shifting the
    arguments that follow)."""
    text = str(value)
    return not _NATIVE_BAD.search(text) and not (re.search(r"\s", text) and text.endswith("\\"))


PRELUDE = r"""param(
    [switch]$Execute,
    [switch]$AcknowledgeVendorWarning,
    [switch]$DisableSMBv1,
    [string]$WorkDir = '',
    [int]$VerifySeconds = 30
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
if (-not $WorkDir) {
    $WorkDir = Join-Path $env:SystemDrive ('wormhunt-' + (Get-Date -Format 'yyyyMMdd-HHmmss') + '-' +
        [guid]::NewGuid().ToString('N').Substring(0, 12))
}
# The work folder holds the backups the rollback imports: only Administrators and SYSTEM may
# write it (no inherited Authenticated Users Modify from C:\); an existing one must be a plain
# folder owned by Administrators, SYSTEM or the current user, or nothing is done.
$me = [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value
if (Test-Path -LiteralPath $WorkDir) {
    $wd = Get-Item -LiteralPath $WorkDir -Force
    $owner = (Get-Acl -LiteralPath $WorkDir).GetOwner([System.Security.Principal.SecurityIdentifier]).Value
    if (-not $wd.PSIsContainer -or ($wd.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -or
        (@('S-1-5-32-544', 'S-1-5-18', $me) -notcontains $owner)) {
        Write-Host ('UNEXPECTED: work folder ' + $WorkDir + ' exists and is not ours (owner ' + $owner + '): stopping')
        exit 2
    }
} else {
    New-Item -ItemType Directory -Path $WorkDir | Out-Null
}
& icacls.exe $WorkDir /inheritance:r /grant:r '*S-1-5-32-544:(OI)(CI)F' '*S-1-5-18:(OI)(CI)F' | Out-Null
if ($LASTEXITCODE -ne 0) { Write-Host ('UNEXPECTED: cannot restrict the ACL of ' + $WorkDir + ': stopping'); exit 2 }
$Quarantine = Join-Path $WorkDir 'quarantine'
if (-not (Test-Path -LiteralPath $Quarantine)) { New-Item -ItemType Directory -Path $Quarantine | Out-Null }
$Manifest = Join-Path $Quarantine 'manifest.csv'
Start-Transcript -Path (Join-Path $WorkDir 'transcript.log') -Append | Out-Null
$script:Step = ''

function Say([string]$m) { Write-Host ('[' + (Get-Date -Format s) + '] ' + $script:Step + ' ' + $m) }
function Fail([string]$m) {
    Say ('UNEXPECTED: ' + $m + ' -- stopping here; nothing after this step was run.')
    Stop-Transcript | Out-Null
    exit 2
}
function Act([string]$what, [scriptblock]$do) {
    if ($Execute) { Say ('DO    ' + $what); & $do } else { Say ('WOULD ' + $what) }
}
function Native([string]$exe, [string[]]$argv) {
    # PowerShell 2.0 turns the stderr of a native program into errors: judge it by its exit code
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    $out = & $exe @argv 2>&1
    $code = $LASTEXITCODE
    $ErrorActionPreference = $saved
    foreach ($line in $out) { Say ([string]$line) }
    return $code
}
trap { Say ('UNEXPECTED error: ' + $_ + ' -- stopping.'); Stop-Transcript | Out-Null; exit 2 }
function Hash-File([string]$path) {
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $fs = [System.IO.File]::OpenRead($path)
    try { $bytes = $sha.ComputeHash($fs) } finally { $fs.Close() }
    return ([System.BitConverter]::ToString($bytes) -replace '-', '').ToLower()
}
function Save-Text([string]$name, [string]$text) {
    [System.IO.File]::WriteAllText((Join-Path $WorkDir $name), $text, [System.Text.Encoding]::UTF8)
}
function Get-Svc([string]$name) {
    return @(Get-WmiObject -Class Win32_Service | Where-Object { $_.Name -eq $name })
}
function Get-TaskObj([string]$path) {
    $ts = New-Object -ComObject 'Schedule.Service'
    $ts.Connect()
    $i = $path.LastIndexOf('\')
    $folder = '\'
    if ($i -gt 0) { $folder = $path.Substring(0, $i) }
    $leaf = $path.Substring($i + 1)
    try { $f = $ts.GetFolder($folder); return @($f, $f.GetTask($leaf), $leaf) } catch { return $null }
}
function Backup-ServiceKey([string]$name, [string]$file) {
    $key = 'HKLM\SYSTEM\CurrentControlSet\Services\' + $name
    if ((Get-Svc $name).Count -eq 0) { Say ('service not present, nothing to export: ' + $name); return }
    if ((Native 'reg.exe' @('export', $key, (Join-Path $WorkDir $file), '/y')) -ne 0) { Fail ('reg export ' + $key) }
}
function Backup-RegKey([string]$key, [string]$file) {
    if ((Native 'reg.exe' @('export', $key, (Join-Path $WorkDir $file), '/y')) -ne 0) { Fail ('reg export ' + $key) }
}
function Backup-Task([string]$path, [string]$file) {
    $t = Get-TaskObj $path
    if ($t -eq $null) { Say ('task not present, nothing to export: ' + $path); return }
    Save-Text $file $t[1].Xml
}
function Backup-Wmi([string]$ns, [string]$cls, [string]$file) {
    @(Get-WmiObject -Namespace $ns -Class $cls) | Export-Clixml -Path (Join-Path $WorkDir $file)
}
function Disable-TaskObj([string]$path) {
    $t = Get-TaskObj $path
    if ($t -eq $null) { Say ('task not present: ' + $path); return }
    $t[1].Enabled = $false
    if ($t[1].Enabled) { Fail ('task still enabled: ' + $path) }
}
function Delete-TaskObj([string]$path) {
    $t = Get-TaskObj $path
    if ($t -eq $null) { Say ('task not present: ' + $path); return }
    $t[0].DeleteTask($t[2], 0)
    if ((Get-TaskObj $path) -ne $null) { Fail ('task still there: ' + $path) }
}
function Disable-Svc([string]$name) {
    foreach ($s in (Get-Svc $name)) {
        if ($s.ChangeStartMode('Disabled').ReturnValue -ne 0) { Fail ('cannot disable service ' + $name) }
    }
}
function Stop-Svc([string]$name) {
    foreach ($s in (Get-Svc $name)) {
        if ($s.State -ne 'Stopped') { [void]$s.StopService() }
        for ($i = 0; $i -lt 30 -and ((Get-Svc $name)[0].State -ne 'Stopped'); $i++) { Start-Sleep -Seconds 1 }
        if ((Get-Svc $name)[0].State -ne 'Stopped') { Fail ('service did not stop: ' + $name) }
    }
}
function Delete-Svc([string]$name) {
    foreach ($s in (Get-Svc $name)) {
        if ($s.Delete().ReturnValue -ne 0) { Fail ('cannot delete service ' + $name) }
    }
}
$Critical = @('csrss.exe', 'wininit.exe', 'lsass.exe', 'services.exe', 'smss.exe', 'winlogon.exe')
function Born($p) {
    # $null when Windows does not say (then the process is not taken as a child, nor checked as one)
    $conv = [System.Management.ManagementDateTimeConverter]
    try { return $conv::ToDateTime([string]$p.CreationDate) } catch { return $null }
}
function Kill-Tree([int]$procId, [string]$image, [string]$created = '') {
    $p = @(Get-WmiObject -Class Win32_Process -Filter ('ProcessId=' + $procId))
    if ($p.Count -eq 0) { Say ('PID ' + $procId + ' is not running'); return }
    $path = [string]$p[0].ExecutablePath
    if ($image -and ($path -ne $image)) { Say ('PID ' + $procId + ' now runs ' + $path + ': not killed'); return }
    $born = Born $p[0]
    if ($created -and ($born -eq $null)) { Say ('PID ' + $procId + ': start time unknown, not killed'); return }
    if ($created) {  # the evidence's creation time (UTC): another process under a reused PID is left alone
        $want = [DateTime]::Parse($created, [Globalization.CultureInfo]::InvariantCulture,
            [Globalization.DateTimeStyles]::AdjustToUniversal -bor [Globalization.DateTimeStyles]::AssumeUniversal)
        if ([Math]::Abs(($born.ToUniversalTime() - $want).TotalSeconds) -gt 2) {
            Say ('PID ' + $procId + ' was started at another time than the evidence shows (PID reused): not killed')
            return
        }
    }
    $sys = Join-Path $env:SystemRoot 'System32'
    $inSys = (-not $path) -or $path.StartsWith($sys, [System.StringComparison]::OrdinalIgnoreCase)
    if (($Critical -contains ([string]$p[0].Name).ToLower()) -and $inSys) {
        Fail ('refusing to kill a critical process, PID ' + $procId)
    }
    foreach ($c in @(Get-WmiObject -Class Win32_Process -Filter ('ParentProcessId=' + $procId))) {
        if ($c.ProcessId -eq $procId) { continue }
        # a child is one only if it started at or after its parent: ParentProcessId is not updated
        # when the parent exits, so an older process can name a reused PID as its parent
        $cb = Born $c
        if (($born -eq $null) -or ($cb -eq $null) -or ($cb -lt $born)) {
            Say ('PID ' + $c.ProcessId + ' is not known to be younger than PID ' + $procId + ': not killed')
            continue
        }
        Kill-Tree ([int]$c.ProcessId) ''
    }
    Stop-Process -Id $procId -Force -ErrorAction SilentlyContinue
    Start-Sleep -Milliseconds 300
    $left = @(Get-WmiObject -Class Win32_Process -Filter ('ProcessId=' + $procId))
    if ($left.Count -ne 0) { Fail ('PID still alive: ' + $procId) }
}
function Kill-ServiceHost([string]$name) {
    $s = Get-Svc $name
    if ($s.Count -eq 0 -or $s[0].ProcessId -eq 0) { Say ('no running host process for ' + $name); return }
    $procId = [int]$s[0].ProcessId
    $shared = @(Get-WmiObject -Class Win32_Service -Filter ('ProcessId=' + $procId))
    if ($shared.Count -gt 1) {
        Say ('PID ' + $procId + ' also hosts ' + ($shared.Count - 1) + ' other services: not killed')
        Say 'the service is disabled and stopped; its DLL unloads at the reboot'
        return
    }
    Kill-Tree $procId ''
}
function Kill-Image([string]$image) {
    foreach ($p in @(Get-WmiObject -Class Win32_Process | Where-Object { $_.ExecutablePath -eq $image })) {
        Kill-Tree ([int]$p.ProcessId) $image
    }
}
function Kill-Script([int]$procId, [string]$commandLine) {
    $p = @(Get-WmiObject -Class Win32_Process -Filter ('ProcessId=' + $procId))
    if ($p.Count -gt 0 -and ([string]$p[0].CommandLine).Trim() -eq $commandLine.Trim()) { Kill-Tree $procId '' }
    $same = @(Get-WmiObject -Class Win32_Process |
        Where-Object { ([string]$_.CommandLine).Trim() -eq $commandLine.Trim() })
    foreach ($q in $same) {
        Kill-Tree ([int]$q.ProcessId) ''
    }
}
function Remove-WmiObj([string]$ns, [string]$cls, [string]$name, [string]$filter, [string]$consumer) {
    $objs = @(Get-WmiObject -Namespace $ns -Class $cls | Where-Object {
        $isBinding = $filter -and ([string]$_.Filter).Contains('"' + $filter + '"') -and
            ([string]$_.Consumer).Contains('"' + $consumer + '"')
        ($name -and $_.Name -eq $name) -or $isBinding
    })
    foreach ($o in $objs) { $o.Delete() }
}
function Remove-WmiClass([string]$ns, [string]$cls) {
    $c = @(Get-WmiObject -Namespace $ns -List | Where-Object { $_.Name -eq $cls })
    foreach ($o in $c) { $o.Delete() }
}
function Test-Plain([string]$path) {
    # the canonical path, with no junction, symbolic link or other reparse point on its way
    $full = [System.IO.Path]::GetFullPath($path)
    if ($full -ne $path) { Fail ('not a canonical path (.., trailing dot or space): ' + $path) }
    $i = Get-Item -LiteralPath $full -Force
    while ($i -ne $null) {
        if ($i.Attributes -band [System.IO.FileAttributes]::ReparsePoint) {
            Fail ('a junction or link is on the path: ' + $path)
        }
        if ($i.PSIsContainer) { $i = $i.Parent } else { $i = $i.Directory }
    }
    return $full
}
function In-SystemFolder([string]$full) {
    foreach ($d in @('System32', 'SysWOW64', 'Sysnative')) {
        $root = (Join-Path $env:SystemRoot $d) + '\'
        if ($full.StartsWith($root, [System.StringComparison]::OrdinalIgnoreCase)) { return $true }
    }
    return $false
}
function Quarantine-File([string]$path, [string]$expected) {
    if (-not (Test-Path -LiteralPath $path -PathType Leaf)) { Say ('file not present: ' + $path); return }
    $path = Test-Plain $path
    if (In-SystemFolder $path) {
        # PowerShell 2.0 has only -FilePath, which reads wildcards: such a path is left to a human
        if ($path.IndexOfAny([char[]]'[]*?') -ge 0) { Fail ('cannot check the signature of ' + $path) }
        $sig = Get-AuthenticodeSignature -FilePath $path
        if ($sig.Status -eq 'Valid') { Fail ('validly signed System32 file, not touched: ' + $path) }
    }
    $hash = Hash-File $path
    if ($expected -and ($hash -ne $expected)) { Fail ('sha256 differs from the evidence: ' + $path) }
    $n = @(Get-ChildItem -LiteralPath $Quarantine -Filter '*.quarantined').Count + 1
    $dest = Join-Path $Quarantine (('{0:D4}' -f $n) + '.quarantined')
    Copy-Item -LiteralPath $path -Destination $dest
    if ((Hash-File $dest) -ne $hash) { Fail ('quarantine copy differs: ' + $path) }
    Add-Content -LiteralPath $Manifest -Value ((Split-Path -Leaf $dest) + "`t" + $hash + "`t" + $path)
    Remove-Item -LiteralPath $path -Force
    if (Test-Path -LiteralPath $path) { Fail ('still present after quarantine: ' + $path) }
}
function Quarantine-Dir([string]$dir) {
    if (-not (Test-Path -LiteralPath $dir -PathType Container)) { Say ('folder not present: ' + $dir); return }
    $dir = Test-Plain $dir
    # walk it first, one level at a time (a recursive listing follows junctions on PowerShell 2),
    # and stop at any reparse point before anything is taken
    $queue = New-Object System.Collections.Queue
    $queue.Enqueue($dir)
    $files = New-Object System.Collections.ArrayList
    $dirs = New-Object System.Collections.ArrayList
    while ($queue.Count -gt 0) {
        $d = [string]$queue.Dequeue()
        [void]$dirs.Add($d)
        foreach ($c in @(Get-ChildItem -LiteralPath $d -Force)) {
            if ($c.Attributes -band [System.IO.FileAttributes]::ReparsePoint) {
                Fail ('a junction or link inside the folder is not followed: ' + $c.FullName)
            }
            if ($c.PSIsContainer) { $queue.Enqueue($c.FullName) } else { [void]$files.Add($c.FullName) }
        }
    }
    foreach ($f in $files) { Quarantine-File $f '' }
    $dirs.Reverse()  # breadth first, reversed: every folder comes before its parent
    foreach ($d in $dirs) { Remove-Item -LiteralPath $d -Force }
}
function Lock-Quarantine {
    $acl = @($Quarantine, '/inheritance:r', '/grant:r', '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F',
        '/deny', '*S-1-1-0:(OI)(CI)(X)')
    [void](Native 'icacls.exe' $acl)
    $7z = Join-Path $env:ProgramFiles '7-Zip\7z.exe'
    if (Test-Path -LiteralPath $7z) {
        $zip = Join-Path $WorkDir 'quarantine.zip'
        if ((Native $7z @('a', '-tzip', '-pinfected', '-mem=AES256', $zip, $Quarantine)) -ne 0) { Fail '7-Zip failed' }
        if ((Native $7z @('t', '-pinfected', $zip)) -ne 0) { Fail '7-Zip test of quarantine.zip failed' }
        Say ('quarantine packed into ' + $zip + ' (AES-256, password infected)')
        Say ('the locked loose copies stay in ' + $Quarantine + ' until you remove them')
    } else {
        Say ('7-Zip not found: the quarantine is the locked folder ' + $Quarantine)
        Say 'its files are renamed *.quarantined and execute is denied; pack them later with wormhunt'
    }
}
"""


def _step_lines(plan: Plan, s: Step) -> list[str]:
    t = s.target
    a = s.action
    out: list[str] = []

    def act(what: str, body: str) -> None:
        out.append(f"Act {ps_str(what)} {{ {body} }}")

    def native_guard(*values: Any) -> bool:
        if all(native_ok(v) for v in values):
            return True
        act(f"{a} {s.id}", f"Fail {ps_str('the target holds a quote or control character; handle it by hand')}")
        return False

    if a == "contain":
        rules = [("out", "remoteport")] + ([("in", "localport")] if t.get("inbound") else [])
        for direction, port_kw in rules:
            name = f"wormhunt-block-smb-{direction}"
            act(f"add firewall rule {name}",
                f"if ((Native 'netsh.exe' @('advfirewall', 'firewall', 'add', 'rule', 'name={name}', "
                f"'dir={direction}', 'action=block', 'protocol=TCP', '{port_kw}=445,139')) -ne 0) "
                "{ Fail 'netsh advfirewall' }")  # fmt: skip
    elif a == "backup":
        out.append("if ($Execute) {")
        out.append("    Save-Text 'netstat-before.txt' ((& netstat.exe -ano) -join \"`r`n\")")
        out.append("    Save-Text 'processes-before.txt' ((Get-WmiObject Win32_Process | Format-Table -AutoSize ProcessId, "  # noqa: E501
                   "ParentProcessId, Name, ExecutablePath, CommandLine | Out-String -Width 4096))")  # fmt: skip
        out.append("    Save-Text 'portproxy-before.txt' ((& netsh.exe interface portproxy show all) -join \"`r`n\")")
        out.append("    Backup-RegKey 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters' 'smb1.reg'")
        for i, name in enumerate(t.get("services", []), 1):
            if native_ok(name):
                out.append(f"    Backup-ServiceKey {ps_str(name)} 'service-{i}.reg'")
            else:
                out.append(f"    Fail {ps_str('a service name holds a quote or control character: export it by hand')}")
        for i, name in enumerate(t.get("tasks", []), 1):
            out.append(f"    Backup-Task {ps_str(name)} 'task-{i}.xml'")
        for i, w in enumerate(t.get("wmi", []), 1):
            cls = w.get("class") or "__EventFilter"
            if w.get("role") == "class":
                out.append(f"    Save-Text 'wmi-{i}.txt' ((Get-WmiObject -Namespace {ps_str(w['namespace'])} -List | "
                           f"Where-Object {{ $_.Name -eq {ps_str(cls)} }} | Format-List * | Out-String))")  # fmt: skip
            else:
                out.append(f"    Backup-Wmi {ps_str(w['namespace'])} {ps_str(cls)} 'wmi-{i}.xml'")
        for i, r in enumerate(t.get("registry", []), 1):
            if native_ok(r["key"]):
                out.append(f"    Backup-RegKey {ps_str(r['key'])} 'registry-{i}.reg'")
        for i, name in enumerate(t.get("users", []), 1):
            if native_ok(name):
                out.append(f"    Save-Text 'user-{i}.txt' ((& net.exe user {ps_str(name)}) -join \"`r`n\")")
        out.append("    Say 'backup written'")
        out.append("} else { Say 'WOULD back up service keys, tasks, WMI objects, portproxy, users and the SMB key' }")
    elif a == "disable_task":
        act(f"disable task {t['name']}", f"Disable-TaskObj {ps_str(t['name'])}")
    elif a == "delete_task":
        act(f"delete task {t['name']}", f"Delete-TaskObj {ps_str(t['name'])}")
    elif a == "disable_service":
        act(f"disable service {t['name']}", f"Disable-Svc {ps_str(t['name'])}")
    elif a == "stop_service":
        act(f"stop service {t['name']}", f"Stop-Svc {ps_str(t['name'])}")
    elif a == "delete_service":
        act(f"delete service {t['name']}", f"Delete-Svc {ps_str(t['name'])}")
    elif a == "kill_tree" and t.get("kind") == "service_host":
        act(f"kill the host process tree of service {t['name']}", f"Kill-ServiceHost {ps_str(t['name'])}")
    elif a == "kill_tree":
        act(f"kill process tree PID {int(t['pid'])} ({t['image']})",
            f"Kill-Tree {int(t['pid'])} {ps_str(t['image'])} {ps_str(t.get('created') or '')}")  # fmt: skip
    elif a == "kill_scripts":
        act(f"kill script PID {int(t['pid'])}", f"Kill-Script {int(t['pid'])} {ps_str(t['command_line'])}")
    elif a == "kill_process":
        act(f"kill processes running {t['path']}", f"Kill-Image {ps_str(t['path'])}")
    elif a == "remove_wmi":
        if t["role"] == "class":
            act(f"remove WMI class {t['namespace']}:{t['class']}",
                f"Remove-WmiClass {ps_str(t['namespace'])} {ps_str(t['class'])}")  # fmt: skip
        else:
            act(f"remove WMI {t['role']} {t.get('name')}",
                f"Remove-WmiObj {ps_str(t['namespace'])} {ps_str(t.get('class') or '')} "
                f"{ps_str(t.get('name') if t['role'] != 'binding' else '')} {ps_str(t.get('filter') or '')} "
                f"{ps_str(t.get('consumer') or '')}")  # fmt: skip
    elif a == "remove_registry":
        if native_guard(t["key"], t["value"]):
            act(f"delete registry value {t['key']}\\{t['value']}",
                f"if ((Native 'reg.exe' @('delete', {ps_str(t['key'])}, '/v', {ps_str(t['value'])}, '/f')) -ne 0) "
                f"{{ Fail 'reg delete' }}")  # fmt: skip
    elif a == "quarantine" and path_refusal(t.get("path"), directory=t.get("kind") == "directory"):
        why = "not an absolute path without wildcards, .. or a trailing dot: by hand"
        act(f"quarantine {s.id}", f"Fail {ps_str(why)}")
    elif a == "quarantine" and t.get("kind") == "directory":
        act(f"quarantine folder {t['path']}", f"Quarantine-Dir {ps_str(t['path'])}")
    elif a == "quarantine":
        act(f"quarantine {t['path']}", f"Quarantine-File {ps_str(t['path'])} {ps_str(t.get('sha256') or '')}")
    elif a == "remove_portproxy":
        port, addr = str(t["listen_port"]), str(t["listen_address"])
        if re.fullmatch(r"\d{1,5}", port) and re.fullmatch(r"[0-9a-fA-F.:*]+", addr):
            act(f"remove portproxy {addr}:{port}",
                f"if ((Native 'netsh.exe' @('interface', 'portproxy', 'delete', 'v4tov4', 'listenport={port}', "
                f"'listenaddress={addr}')) -ne 0) {{ Fail 'netsh portproxy delete' }}")  # fmt: skip
        else:
            act(f"remove portproxy {s.id}", f"Fail {ps_str('unexpected listen address or port')}")
    elif a == "remove_user":
        if native_guard(t["name"]):
            act(f"disable local user {t['name']}",
                f"if ((Native 'net.exe' @('user', {ps_str(t['name'])}, '/active:no')) -ne 0) {{ Fail 'net user' }}")
    elif a == "disable_smb1":
        out.append("if ($DisableSMBv1) {")
        out.append("    Act 'disable the SMBv1 server' { Set-ItemProperty -Path "
                   "'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters' -Name 'SMB1' -Value 0 "
                   "-Type DWord }")  # fmt: skip
        out.append("} else { Say 'SMBv1 left as is (run with -DisableSMBv1 to disable it)' }")
    elif a == "patch":
        out.append("Say 'install MS17-010 for this OS build (check srv.sys), then reboot: patching does not remove the "
                   "infection, the steps above do'")  # fmt: skip
    elif a == "verify":
        out.append("if ($Execute) {")
        out.append("    Say ('waiting ' + $VerifySeconds + ' s for anything to regrow')")
        out.append("    Start-Sleep -Seconds $VerifySeconds")
        for p in t.get("files", []) + t.get("directories", []):
            out.append(f"    if (Test-Path -LiteralPath {ps_str(p)}) {{ Fail ('regrown: ' + {ps_str(p)}) }}")
        for name in t.get("services", []):
            out.append(f"    if ((Get-Svc {ps_str(name)}).Count -ne 0) {{ Fail ('service back: ' + {ps_str(name)}) }}")
        for name in t.get("tasks", []):
            out.append(f"    if ((Get-TaskObj {ps_str(name)}) -ne $null) {{ Fail ('task back: ' + {ps_str(name)}) }}")
        for img in t.get("images", []):
            out.append(f"    if (@(Get-WmiObject Win32_Process | Where-Object {{ $_.ExecutablePath -eq {ps_str(img)} }})"  # noqa: E501
                       f".Count -ne 0) {{ Fail ('running again: ' + {ps_str(img)}) }}")  # fmt: skip
        out.append("    Lock-Quarantine")
        out.append("    Say 'verified: nothing regrew. Collect and triage again now, after a reboot and after 24 h.'")
        out.append("} else { Say 'WOULD wait and check that nothing regrows' }")
    else:
        out.append(f"Say {ps_str('step not rendered: ' + a)}")
    return out


def render(plan: Plan) -> str:
    lines = [
        "# wormhunt remediation plan (PowerShell 2.0+). Dry-run unless -Execute.",
        "# Review every step before running with -Execute. Rollback: rollback.ps1 -WorkDir <same folder>.",
        PRELUDE,
        f"$PlanHost = {ps_str(plan.host)}",
        "if ($Execute) { Say ('EXECUTE plan for ' + $PlanHost + ' on ' + $env:COMPUTERNAME) } "
        "else { Say ('DRY-RUN plan for ' + $PlanHost + ': nothing will change (add -Execute)') }",
        "if ($Execute -and ($env:COMPUTERNAME -ne $PlanHost)) { Fail ('this plan is for ' + $PlanHost) }",
    ]
    if plan.conservative:
        lines += [
            "Write-Warning 'VENDOR FORBIDS ANTIVIRUS ON THIS HOST: conservative plan (exact paths only). "
            "Confirm each step with the vendor; run with -AcknowledgeVendorWarning.'",
            "Write-Warning '厂商禁止在此主机上安装杀毒软件：本计划为保守方案（仅处理确切路径）。请与厂商逐步确认，"
            "并加 -AcknowledgeVendorWarning 运行。'",
            "if ($Execute -and -not $AcknowledgeVendorWarning) { Fail 'vendor warning not acknowledged' }",
        ]
    for s in plan.steps:
        lines.append("")
        lines.append(f"$script:Step = '[{s.id} {s.action}]'")
        lines += _step_lines(plan, s)
    lines += ["", "$script:Step = ''", "Say 'plan finished'", "Stop-Transcript | Out-Null", "exit 0", ""]
    return "\n".join(lines)


ROLLBACK_PRELUDE = r"""param([switch]$Execute, [Parameter(Mandatory = $true)][string]$WorkDir)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
Start-Transcript -Path (Join-Path $WorkDir 'rollback-transcript.log') -Append | Out-Null
function Say([string]$m) { Write-Host ('[' + (Get-Date -Format s) + '] ' + $m) }
function Fail([string]$m) {
    Say ('UNEXPECTED: ' + $m + ' -- stopping.')
    Stop-Transcript | Out-Null
    exit 2
}
function Act([string]$what, [scriptblock]$do) {
    if ($Execute) { Say ('DO    ' + $what); & $do } else { Say ('WOULD ' + $what) }
}
function Hash-File([string]$path) {
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $fs = [System.IO.File]::OpenRead($path)
    try { $bytes = $sha.ComputeHash($fs) } finally { $fs.Close() }
    return ([System.BitConverter]::ToString($bytes) -replace '-', '').ToLower()
}
function Import-Reg([string]$file) {
    $p = Join-Path $WorkDir $file
    if (Test-Path -LiteralPath $p) { & reg.exe import $p; if ($LASTEXITCODE -ne 0) { Fail ('reg import ' + $file) } }
}
function Restore-Task([string]$path, [string]$file) {
    $p = Join-Path $WorkDir $file
    if (-not (Test-Path -LiteralPath $p)) { return }
    $ts = New-Object -ComObject 'Schedule.Service'
    $ts.Connect()
    $i = $path.LastIndexOf('\')
    $folder = '\'
    if ($i -gt 0) { $folder = $path.Substring(0, $i) }
    $xml = [System.IO.File]::ReadAllText($p)
    [void]$ts.GetFolder($folder).RegisterTask($path.Substring($i + 1), $xml, 6, $null, $null, 3)
}
function Restore-Files {
    $q = Join-Path $WorkDir 'quarantine'
    $m = Join-Path $q 'manifest.csv'
    if (-not (Test-Path -LiteralPath $m)) { Say 'no quarantine manifest'; return }
    foreach ($line in [System.IO.File]::ReadAllLines($m)) {
        $parts = $line.Split("`t")
        if ($parts.Count -lt 3) { continue }
        # only NNNN.quarantined sources, only to paths this plan quarantined (the manifest is a file
        # in the work folder: it is not trusted to name a destination)
        if ($parts[0] -notmatch '^\d{4}\.quarantined$') { Fail ('unexpected quarantine entry: ' + $parts[0]) }
        $src = Join-Path $q $parts[0]
        $dest = [System.IO.Path]::GetFullPath($parts[2])
        $named = ($PlanFiles -contains $dest)
        foreach ($d in $PlanDirs) {
            if ($dest.StartsWith($d + '\', [System.StringComparison]::OrdinalIgnoreCase)) { $named = $true }
        }
        if (-not $named -or $dest -ne $parts[2]) { Fail ('not a path this plan quarantined: ' + $parts[2]) }
        if ((Test-Path -LiteralPath $dest) -and
            ((Get-Item -LiteralPath $dest -Force).Attributes -band [System.IO.FileAttributes]::ReparsePoint)) {
            Fail ('the destination is a link: ' + $dest)
        }
        $dir = Split-Path -Parent $dest
        if (-not (Test-Path -LiteralPath $dir)) { New-Item -ItemType Directory -Path $dir -Force | Out-Null }
        Copy-Item -LiteralPath $src -Destination $dest
        if ((Hash-File $dest) -ne $parts[1]) { Fail ('restored file differs: ' + $dest) }
        Say ('restored ' + $dest)
    }
}
"""


def render_rollback(plan: Plan) -> str:
    """Undo what the plan changed, from the backups it made (files byte for byte, registry keys,
    tasks, firewall rules, portproxy, users). WMI objects are restored by hand from the
    exported XML (Import-Clixml), on purpose: re-creating a malicious subscription should be a
    deliberate act."""
    lines = ["# wormhunt rollback (PowerShell 2.0+). Dry-run unless -Execute.", ROLLBACK_PRELUDE]
    quarantined = [s.target for s in plan.steps if s.action == "quarantine"]
    files = [t["path"] for t in quarantined if t.get("kind") == "file" and not path_refusal(t.get("path"))]
    dirs = [t["path"].rstrip("\\") for t in quarantined
            if t.get("kind") == "directory" and not path_refusal(t.get("path"), directory=True)]  # fmt: skip
    lines.append("$PlanFiles = @(" + ", ".join(ps_str(f) for f in files) + ")")
    lines.append("$PlanDirs = @(" + ", ".join(ps_str(d) for d in dirs) + ")")
    back = next((s for s in plan.steps if s.action == "backup"), None)
    if back:
        lines.append("Act 'restore quarantined files' { Restore-Files }")
        for i, name in enumerate(back.target.get("tasks", []), 1):
            lines.append(f"Act {ps_str('re-register task ' + name)} {{ Restore-Task {ps_str(name)} 'task-{i}.xml' }}")
        for i, _ in enumerate(back.target.get("services", []), 1):
            lines.append(f"Act 're-import service key {i} (takes effect after a reboot)' {{ Import-Reg 'service-{i}.reg' }}")  # noqa: E501
        for i, _ in enumerate(back.target.get("registry", []), 1):
            lines.append(f"Act 're-import registry key {i}' {{ Import-Reg 'registry-{i}.reg' }}")
        lines.append("Act 're-import the SMB server key' { Import-Reg 'smb1.reg' }")
    for s in plan.steps:
        t = s.target
        if s.action == "contain":
            for d in ("in", "out"):
                lines.append(f"Act 'delete firewall rule wormhunt-block-smb-{d}' {{ & netsh.exe advfirewall firewall "
                             f"delete rule name=wormhunt-block-smb-{d} }}")  # fmt: skip
        elif s.action == "remove_portproxy" and re.fullmatch(r"\d{1,5}", str(t["listen_port"])):
            conn = str(t.get("connect") or "")
            caddr, _, cport = conn.rpartition(":")
            if re.fullmatch(r"[0-9a-fA-F.:*]+", str(t["listen_address"])) and re.fullmatch(r"\d{1,5}", cport) and (
                re.fullmatch(r"[0-9a-fA-F.:]+", caddr)
            ):
                lines.append(f"Act 're-add portproxy {t['listen_port']}' {{ & netsh.exe interface portproxy add v4tov4 "
                             f"listenport={t['listen_port']} listenaddress={t['listen_address']} connectport={cport} "
                             f"connectaddress={caddr} }}")  # fmt: skip
        elif s.action == "remove_user" and native_ok(t["name"]):
            lines.append(f"Act {ps_str('enable user ' + t['name'])} {{ & net.exe user {ps_str(t['name'])} /active:yes }}")  # noqa: E501
        elif s.action == "remove_wmi":
            lines.append("Say 'WMI objects: restore by hand from the wmi-*.xml exports (Import-Clixml) if needed'")
            break
    lines += ["Say 'rollback finished; reboot for restored services to start'", "Stop-Transcript | Out-Null", ""]
    return "\n".join(lines)
