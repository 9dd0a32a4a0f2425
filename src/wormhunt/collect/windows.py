"""The Windows collector scripts (`wormhunt collector --windows ps1|bat`), rendered from one
table of commands so that every command is known to have a parser for its output.

Both scripts are read-only and install nothing: they run built-in commands, write each
output to its own file in a bundle folder named after the host and time, and finish with
`manifest.json` (docs/bundle.md). The PowerShell script runs on PowerShell 2.0 (Server
2008 R2 ships it): no ConvertTo-Json, no -Encoding UTF8NoBOM, no Get-CimInstance.
"""

from __future__ import annotations

from dataclasses import dataclass

from wormhunt import __version__


@dataclass(frozen=True)
class Command:
    output: str  # file name in the bundle
    cmd: str  # cmd.exe command line (both scripts run it through cmd /c)
    format: str  # the wormhunt parser (sources FORMATS key) that reads this output


WORM_FOLDERS = (r"%SystemRoot%\AppDiagnostics", r"%SystemRoot%\SpeechsTracing", r"%SystemRoot%\NetworkDistribution")
_PS_WMI = (
    'powershell -NoProfile -Command "foreach ($c in '
    "'__EventFilter','__EventConsumer','__FilterToConsumerBinding')"
    ' { Get-WmiObject -Namespace root\\subscription -Class $c | Format-List * }"'
)

COMMANDS = (
    Command("systeminfo.txt", "systeminfo", "systeminfo"),
    Command("netstat-ano.txt", "netstat -ano", "netstat"),
    Command("tasklist-v.csv", "tasklist /v /fo csv", "tasklist"),
    Command("tasklist-svc.txt", "tasklist /svc", "tasklist"),
    Command(
        "wmic-process.csv",
        "wmic process get CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId /format:csv",
        "wmic-process",
    ),
    Command("sc-queryex.txt", "sc queryex type= service state= all", "sc-service"),
    Command(
        "wmic-service.csv",
        "wmic service get DisplayName,Name,PathName,ProcessId,StartMode,State /format:csv",
        "wmic-service",
    ),
    Command("schtasks-v.csv", "schtasks /query /fo csv /v", "schtasks"),
    Command("wmi-subscription.txt", _PS_WMI, "wmi-subscription"),
    Command("portproxy.txt", "netsh interface portproxy show all", "netsh-portproxy"),
    Command("net-user.txt", "net user", "net-user"),
    Command("qfe.csv", "wmic qfe list full /format:csv", "wmic-qfe"),
    *(
        Command(f"dir-{folder.rsplit(chr(92), 1)[-1].lower()}.txt", f'dir /s /t:c "{folder}"', "dir")
        for folder in WORM_FOLDERS
    ),
)

BAT = r"""@echo off
rem wormhunt collector {version} (batch, built-in commands only, read-only).
rem Writes a bundle folder %COMPUTERNAME%-<time> next to this script; give it to `wormhunt triage`.
setlocal
for /f "tokens=2 delims==" %%a in ('wmic os get LocalDateTime /value ^| find "="') do set LDT=%%a
set OUT=%~dp0%COMPUTERNAME%-%LDT:~0,8%T%LDT:~8,6%
mkdir "%OUT%"
{commands}
> "%OUT%\manifest.json" echo {{
>> "%OUT%\manifest.json" echo   "host": "%COMPUTERNAME%",
>> "%OUT%\manifest.json" echo   "collected_at": "%LDT:~0,4%-%LDT:~4,2%-%LDT:~6,2%T%LDT:~8,2%:%LDT:~10,2%:%LDT:~12,2%",
>> "%OUT%\manifest.json" echo   "collector": {{"name": "wormhunt-collector.bat", "version": "{version}"}},
>> "%OUT%\manifest.json" echo   "commands": [
{manifest}
>> "%OUT%\manifest.json" echo   ]
>> "%OUT%\manifest.json" echo }}
echo Bundle written to %OUT%
endlocal
"""

PS1 = r"""# wormhunt collector {version} (PowerShell 2.0 and later, read-only, installs nothing).
# Writes a bundle folder <HOST>-<time> next to this script; give it to `wormhunt triage`.
$ErrorActionPreference = 'Continue'
$started = Get-Date
$stamp = $started.ToString('yyyyMMddTHHmmss')
$base = Split-Path -Parent $MyInvocation.MyCommand.Definition
$out = Join-Path $base ($env:COMPUTERNAME + '-' + $stamp)
New-Item -ItemType Directory -Path $out | Out-Null
function Esc([string]$s) {{ $s.Replace('\', '\\').Replace('"', '\"') }}
$ran = @()
$commands = @(
{commands}
)
foreach ($c in $commands) {{
    $file = Join-Path $out $c[0]
    # cmd /c keeps each tool's own bytes (OEM code page, UTF-16 for wmic): the parsers expect them.
    cmd.exe /c ($c[1] + ' > "' + $file + '" 2>&1')
    $ran += '    {{"command": "' + (Esc $c[1]) + '", "exit_code": ' + $LASTEXITCODE + ', "output": "' + $c[0] + '"}}'
}}
$ips = @(Get-WmiObject Win32_NetworkAdapterConfiguration -Filter 'IPEnabled = TRUE' | ForEach-Object {{ $_.IPAddress }})
$offset = [System.TimeZone]::CurrentTimeZone.GetUtcOffset($started)
$sign = '+'; if ($offset.Ticks -lt 0) {{ $sign = '-' }}
$zone = $sign + ('{{0:00}}:{{1:00}}' -f [Math]::Abs($offset.Hours), [Math]::Abs($offset.Minutes))
$json = @(
    '{{',
    '  "host": "' + (Esc $env:COMPUTERNAME) + '",',
    '  "ips": [' + (($ips | ForEach-Object {{ '"' + $_ + '"' }}) -join ', ') + '],',
    '  "collected_at": "' + $started.ToString('yyyy-MM-ddTHH:mm:ss') + $zone + '",',
    '  "time_zone": "' + (Esc ([System.TimeZone]::CurrentTimeZone.StandardName)) + '",',
    '  "locale": "' + (Get-Culture).Name + '",',
    '  "collector": {{"name": "wormhunt-collector.ps1", "version": "{version}"}},',
    '  "commands": [',
    ($ran -join ",`r`n"),
    '  ]',
    '}}'
) -join "`r`n"
[System.IO.File]::WriteAllText((Join-Path $out 'manifest.json'), $json, (New-Object System.Text.UTF8Encoding($false)))
Write-Host ('Bundle written to ' + $out)
"""


def _ps_quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def render(kind: str) -> str:
    """The collector script, `ps1` or `bat`, with CRLF line ends as Windows expects."""
    if kind == "bat":
        commands = "\n".join(f'{c.cmd} > "%OUT%\\{c.output}" 2>&1' for c in COMMANDS)
        manifest = "\n".join(
            f'>> "%OUT%\\manifest.json" echo     {{"command": "{c.output[:-4]}", "output": "{c.output}"}}'
            + ("," if i < len(COMMANDS) - 1 else "")
            for i, c in enumerate(COMMANDS)
        )
        text = BAT.format(version=__version__, commands=commands, manifest=manifest)
    elif kind == "ps1":
        commands = ",\n".join(f"    @({_ps_quote(c.output)}, {_ps_quote(c.cmd)})" for c in COMMANDS)
        text = PS1.format(version=__version__, commands=commands)
    else:
        raise ValueError("use ps1 or bat")
    return text.replace("\r\n", "\n").replace("\n", "\r\n")
