"""Remote collection (collect/remote.py) and `wormhunt sweep --ssh`.

Unit tests for target parsing, credentials and scrubbing, resume and the ss → netstat layout; WinRM
at its boundaries (a refused loopback port, argument handling); and a real SSH sweep over network
namespaces this test creates: veth pairs from the root namespace on private /30s (10.77.N.0/30)
that exist only inside this test, one OpenSSH sshd per namespace with test-generated keys:

  win      ForceCommand maps each requested command line to a file of a simulated infected
           Windows bundle (cmd.exe's "is not recognized" for anything else, like `uname -s`)
  linux    a real Linux host (the namespace itself: its processes and sockets)
  slow     ForceCommand sleeps far past the per-host timeout
  badauth  sshd that knows no key and rejects the password
  refused  a namespace with no sshd (connection refused)
  dead     an address nobody answers ARP for (no route / timeout)

No traffic leaves those namespaces. Needs root, `ip netns` and /usr/sbin/sshd; skips otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wormhunt.collect import remote
from wormhunt.collect.windows import COMMANDS

SSHD = "/usr/sbin/sshd"
TIMEOUT = 8.0  # per host, seconds
SLACK = 2.0  # scheduling and teardown over the per-host bound

# ------------------------------------------------------------------ unit tests


def test_parse_targets_list_and_file(tmp_path: Path) -> None:
    got = remote.parse_targets("a, b:2222,[fe80::1]:23,a,c.example", "ssh")
    assert [(t.host, t.port) for t in got] == [("a", 22), ("b", 2222), ("fe80::1", 23), ("c.example", 22)]
    f = tmp_path / "hosts.txt"
    f.write_text("\ufeff# fleet\nsrv1\n\nsrv2:5986  # https\n", encoding="utf-8")
    assert [(t.host, t.port) for t in remote.parse_targets(str(f), "winrm")] == [("srv1", 5985), ("srv2", 5986)]
    for bad in ("a:b", "a:0", "a b", "[fe80::1", "x/y"):
        with pytest.raises(ValueError):
            remote.parse_targets(bad, "ssh")


def test_credentials_from_env_never_shown() -> None:
    env = {"WORMHUNT_SSH_USER": "ops", "WORMHUNT_SSH_PASSWORD": "pw-Secret-1", "WORMHUNT_SSH_KEY_PASSPHRASE": "pp-2"}
    c = remote.credentials(None, env=env, prompt=False, use_keyring=False)
    assert (c.user, c.password, c.passphrase, c.source) == ("ops", "pw-Secret-1", "pp-2", "env")
    assert "pw-Secret-1" not in repr(c) and "pp-2" not in repr(c) and "pw-Secret-1" not in str(c)
    assert c.scrub("denied for ops with pw-Secret-1 / pp-2") == "denied for ops with *** / ***"
    assert remote.credentials("root", env={}, prompt=False, use_keyring=False).user == "root"


def test_prompt_only_without_password_or_key(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []
    monkeypatch.setattr(remote.getpass, "getpass", lambda _p: asked.append(1) or "typed")
    c = remote.credentials("u", env={}, prompt=True, use_keyring=False)
    assert c.password == "typed" and c.source == "prompt" and asked == [1]
    c = remote.credentials("u", env={"WORMHUNT_SSH_KEY": "/k"}, prompt=True, use_keyring=False)
    assert c.password is None and asked == [1]


def test_complete_bundle_and_resume_skip(tmp_path: Path) -> None:
    t = remote.Target("192.0.2.1", 22, "ssh")  # never contacted: the bundle is already there
    folder = tmp_path / t.key
    folder.mkdir()
    assert not remote.complete_bundle(folder)
    (folder / "manifest.json").write_text(
        json.dumps({"host": "H", "commands": [{"command": "x", "exit_code": 0, "output": "x.txt"}],
                    "remote": {"protocol": "ssh", "address": "192.0.2.1", "port": 22}})
    )
    assert not remote.complete_bundle(folder)  # an output is missing: collect again
    (folder / "x.txt").write_text("x")
    assert remote.complete_bundle(folder) and remote.complete_bundle(folder, t)
    res = remote.sweep([t], remote.Credentials("u"), tmp_path, timeout=5)
    assert res[0].status == "skipped" and res[0].bundle == folder


def test_concurrency_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    live, peak = 0, 0

    async def fake_one(target: remote.Target, *_a: object, **_k: object) -> remote.Result:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.02)
        live -= 1
        return remote.Result(target, "unreachable", reason="timeout")

    monkeypatch.setattr(remote, "_one", fake_one)
    targets = [remote.Target(f"h{i}", 22, "ssh") for i in range(40)]
    done: list[remote.Result] = []
    res = remote.sweep(targets, remote.Credentials("u"), tmp_path, concurrency=5, on_done=done.append)
    assert peak == 5 and len(done) == 40 and [r.target for r in res] == targets


def test_ss_to_netstat_layout() -> None:
    text = textwrap.dedent(
        """\
        tcp   LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=812,fd=3))
        tcp   LISTEN 0 128 [::]:445 [::]:* users:(("smbd",pid=9,fd=3))
        tcp   ESTAB  0 0 10.0.0.5:50000 10.0.0.9:445 users:(("x",pid=77,fd=5))
        udp   UNCONN 0 0 *:5353 *:*
        """
    )
    out = remote._ss_to_netstat(text)
    assert "  TCP    0.0.0.0:22             0.0.0.0:0              LISTENING       812" in out
    assert "[::]:445               [::]:0" in out
    assert "10.0.0.5:50000         10.0.0.9:445           ESTABLISHED     77" in out
    assert "UDP    0.0.0.0:5353           *:*" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_winrm_refused_on_loopback_is_fast_and_scrubbed(tmp_path: Path) -> None:
    pytest.importorskip("pypsrp", reason="the winrm extra is not installed")
    port = _free_port()  # nothing listens there now
    creds = remote.Credentials("Administrator", password="Winrm-Canary-" + secrets.token_hex(4))
    t0 = time.monotonic()
    res = remote.sweep(remote.parse_targets(f"127.0.0.1:{port}", "winrm"), creds, tmp_path, timeout=10, retries=1)
    took = time.monotonic() - t0
    assert res[0].status == "unreachable" and res[0].reason == "connection refused", res[0]
    assert took < 5, took
    assert creds.password not in repr(res[0])
    assert not any(creds.password.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_winrm_silent_listener_times_out_within_budget(tmp_path: Path) -> None:
    pytest.importorskip("pypsrp", reason="the winrm extra is not installed")
    with socket.socket() as srv:  # accepts connections (kernel backlog) and never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        target = remote.Target("127.0.0.1", srv.getsockname()[1], "winrm")
        t0 = time.monotonic()
        res = remote.sweep([target], remote.Credentials("u", password="p"), tmp_path, timeout=2, retries=3)
        took = time.monotonic() - t0
    assert res[0].reason == "timeout" and took < 2 + SLACK, (res[0], took)


def test_winrm_arguments() -> None:
    pytest.importorskip("pypsrp", reason="the winrm extra is not installed")
    t = remote.Target("127.0.0.1", 5986, "winrm")
    with pytest.raises(ValueError):
        remote.winrm_client(t, remote.Credentials("u", password="p"), auth="digest")
    for auth in ("negotiate", "ntlm", "kerberos"):
        c = remote.winrm_client(t, remote.Credentials("u", password="p"), auth=auth)
        assert c.wsman.transport.auth == auth and c.wsman.transport.ssl  # 5986: HTTPS by default
    c = remote.winrm_client(remote.Target("127.0.0.1", 5985, "winrm"), remote.Credentials("u", password="p"))
    assert not c.wsman.transport.ssl


def test_winrm_error_scrubbed() -> None:
    creds = remote.Credentials("u", password="Sekr3t-pw")
    err = remote._winrm_error(RuntimeError("server said no to Sekr3t-pw"), creds)
    assert "Sekr3t-pw" not in err.reason and "***" in err.reason


# ------------------------------------------------------------------ namespace hosts


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if not shutil.which("ip"):
        return "no `ip` command (iproute2)"
    if not Path(SSHD).exists():
        return f"no {SSHD} (apt-get install openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "no ssh-keygen"
    probe = f"whprobe{os.getpid()}"
    if _run("ip", "netns", "add", probe, check=False).returncode != 0:
        return "`ip netns add` is not permitted here"
    _run("ip", "netns", "del", probe, check=False)
    if _run("ip", "-o", "addr", "show", "to", "10.77.0.0/16", check=False).stdout.strip():
        return "10.77.0.0/16 is already in use on this machine"
    return None


FAKE_WIN = r"""
import json, os, sys
table = json.load(open(sys.argv[1], encoding="utf-8"))
cmd = os.environ.get("SSH_ORIGINAL_COMMAND", "")
inner = cmd[7:] if cmd.startswith("cmd /c ") else cmd
entry = table.get(inner)
if entry is None:
    word = (inner.split() or [""])[0]
    sys.stderr.write(f"'{word}' is not recognized as an internal or external command,\r\n"
                     "operable program or batch file.\r\n")
    sys.exit(1)
if "file" in entry:
    with open(entry["file"], "rb") as fh:
        sys.stdout.buffer.write(fh.read())
else:
    sys.stdout.buffer.write(entry["text"].encode("utf-8"))
sys.exit(entry.get("rc", 0))
"""

# simulated bundle file that answers each collector command (content decides the parser, not the name)
SIM_FILES = {
    "systeminfo": "systeminfo.txt",
    "netstat -ano": "netstat_ano.txt",
    "tasklist /v /fo csv": "tasklist_v.csv",
    "tasklist /svc": "tasklist_svc.txt",
    "sc queryex type= service state= all": "sc_qc.txt",
    "schtasks /query /fo csv /v": "schtasks_v.csv",
    "netsh interface portproxy show all": "portproxy.txt",
    "net user": "net_user.txt",
    "wmic qfe list full /format:csv": "hotfixes.csv",
}


def _win_table(bundle: Path, host: str) -> dict:
    table: dict = {"hostname": {"text": host + "\r\n"}}
    for c in COMMANDS:
        name = SIM_FILES.get(c.cmd)
        if c.cmd.startswith("wmic process"):
            name = "wmic_process.csv"
        elif "root\\subscription" in c.cmd:
            name = "wmi_subscriptions.txt"
        elif c.cmd.startswith("dir "):
            name = "dir_" + c.output[4:].removesuffix(".txt") + ".txt"
        if name and (bundle / name).is_file():
            table[c.cmd] = {"file": str(bundle / name)}
        elif c.cmd.startswith("dir "):
            table[c.cmd] = {"text": "File Not Found\r\n", "rc": 1}
        else:
            table[c.cmd] = {"text": "", "rc": 0}
    return table


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tag = f"wh{os.getpid() % 100000}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.addr: dict[str, str] = {}

    def netns(self, index: int, name: str, address: bool = True) -> str:
        ns, veth = f"{self.tag}-{name}", (f"v{self.tag}{index}", f"p{self.tag}{index}")
        _run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        _run("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        _run("ip", "link", "set", veth[1], "netns", ns)
        _run("ip", "addr", "add", f"10.77.{index}.1/30", "dev", veth[0])
        _run("ip", "link", "set", veth[0], "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        if address:
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.77.{index}.2/30", "dev", veth[1])
            _run("ip", "netns", "exec", ns, "ip", "link", "set", veth[1], "up")
        self.addr[name] = f"10.77.{index}.2"
        return ns

    def sshd(self, ns: str, name: str, *, force: str | None, password: bool = False, keys: bool = True) -> None:
        d = self.root
        auth = d / f"authorized_keys-{name}"
        auth.write_text((d / "userkey.pub").read_text() if keys else "")
        cfg = d / f"sshd-{name}.conf"
        cfg.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.addr[name]}:22",
                    f"HostKey {d / 'hostkey'}",
                    f"PidFile {d / f'sshd-{name}.pid'}",
                    f"AuthorizedKeysFile {auth}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin yes",
                    f"PasswordAuthentication {'yes' if password else 'no'}",
                    "KbdInteractiveAuthentication no",
                    "LogLevel VERBOSE",
                    *( [f"ForceCommand {force}"] if force else []),
                ]
            )
            + "\n"
        )
        log = (d / f"sshd-{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=log)
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((self.addr[name], 22)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"sshd in {ns} did not start: {(d / f'sshd-{name}.log').read_text(errors='replace')}")

    def close(self) -> None:
        for ns in self.namespaces:  # every process inside our namespaces: sshd and its sessions
            pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        for ns in self.namespaces:
            _run("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    why = _netns_usable()
    if why:
        pytest.skip(why)
    from wormhunt.simulate import simulate

    root = tmp_path_factory.mktemp("sshlab")
    os.chmod(root, 0o755)
    passphrase = "Passphrase-Canary-" + secrets.token_hex(6)
    password = "Password-Canary-" + secrets.token_hex(6)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "hostkey"))
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(root / "userkey"))
    truth = simulate(root / "sim", hosts=8, seed=3, lines=2000)
    infected = truth["infected"][0]
    (root / "fakewin.py").write_text(FAKE_WIN)
    (root / "win.json").write_text(json.dumps(_win_table(root / "sim" / "hosts" / infected, infected)))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    lab = Lab(root)
    try:
        lab.sshd(lab.netns(1, "win"), "win", force=f"{sys.executable} {root / 'fakewin.py'} {root / 'win.json'}")
        lab.sshd(lab.netns(2, "linux"), "linux", force=None)
        lab.sshd(lab.netns(3, "slow"), "slow", force="/bin/sleep 120")
        lab.sshd(lab.netns(4, "badauth"), "badauth", force=None, password=True, keys=False)
        lab.netns(5, "refused")
        lab.netns(6, "dead", address=False)
        lab.secrets = (password, passphrase)  # type: ignore[attr-defined]
        lab.infected = infected  # type: ignore[attr-defined]
        yield lab
    finally:
        lab.close()


def _env(lab: Lab, home: Path) -> dict[str, str]:
    password, passphrase = lab.secrets  # type: ignore[attr-defined]
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "WORMHUNT_SSH_USER": "root",
        "WORMHUNT_SSH_PASSWORD": password,
        "WORMHUNT_SSH_KEY": str(lab.root / "userkey"),
        "WORMHUNT_SSH_KEY_PASSPHRASE": passphrase,
        "WORMHUNT_SSH_KNOWN_HOSTS": str(home / "known_hosts"),
    }


def _assert_no_secret(lab: Lab, tree: Path, *texts: str) -> None:
    for secret in lab.secrets:  # type: ignore[attr-defined]
        forms = [secret.encode(), secret.encode("utf-16-le")]
        for text in texts:
            assert secret not in text
        for p in tree.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                assert not any(f in data for f in forms), f"credential found in {p}"


def test_host_key_unknown_and_changed(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path / "home")
    creds = remote.credentials(None, env=env, prompt=False, use_keyring=False)
    targets = remote.parse_targets(lab.addr["linux"], "ssh")
    known = tmp_path / "home" / "known_hosts"
    res = remote.sweep(targets, creds, tmp_path / "out", timeout=TIMEOUT, known_hosts=known)
    assert res[0].status == "unreachable" and res[0].reason.startswith("host key unknown"), res[0]
    other = tmp_path / "other"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other))
    known.write_text(f"{lab.addr['linux']} {other.with_suffix('.pub').read_text()}")
    res = remote.sweep(targets, creds, tmp_path / "out", timeout=TIMEOUT, known_hosts=known, accept_new=True)
    assert res[0].status == "unreachable" and res[0].reason.startswith("host key changed"), res[0]
    _assert_no_secret(lab, tmp_path)


def test_ssh_sweep_over_namespaces(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path / "home")
    hosts = tmp_path / "hosts.txt"
    order = ("win", "linux", "slow", "badauth", "refused", "dead")
    hosts.write_text("".join(f"{lab.addr[n]}\n" for n in order))
    out, case = tmp_path / "remote", tmp_path / "case"
    cli = [sys.executable, "-m", "wormhunt", "sweep", "--ssh", str(hosts), "--out", str(out), "--case", str(case),
           "--timeout", str(TIMEOUT), "--retries", "2", "--concurrency", "8", "--ssh-accept-new"]  # fmt: skip

    # 1. collection alone, through the API: bounded by the per-host timeout
    creds = remote.credentials(None, env=env, prompt=False, use_keyring=False)
    t0 = time.monotonic()
    results = remote.sweep(
        remote.parse_targets(str(hosts), "ssh"), creds, out, timeout=TIMEOUT, retries=2, concurrency=8,
        known_hosts=env["WORMHUNT_SSH_KNOWN_HOSTS"], accept_new=True,
    )  # fmt: skip
    collect_s = time.monotonic() - t0
    by = {n: r for n, r in zip(order, results, strict=True)}
    detail = "; ".join(f"{n}: {r.status} {r.reason or ''} {r.seconds:.2f}s x{r.attempts}" for n, r in by.items())
    print(f"\ncollection of {len(order)} hosts: {collect_s:.2f} s (timeout {TIMEOUT} s); {detail}")
    assert collect_s < TIMEOUT + SLACK
    assert by["win"].status == "collected" and by["win"].os == "windows"
    assert by["linux"].status == "collected" and by["linux"].os == "linux"
    assert by["slow"].reason == "timeout"
    assert by["badauth"].reason == "auth failed" and by["badauth"].attempts == 1
    assert by["refused"].reason == "connection refused" and by["refused"].attempts == 3
    assert by["dead"].reason in ("no route to host", "timeout")
    assert remote.complete_bundle(by["win"].bundle) and remote.complete_bundle(by["linux"].bundle)
    manifest = json.loads((by["win"].bundle / "manifest.json").read_text())
    assert manifest["host"] == lab.infected  # type: ignore[attr-defined]
    assert [c["command"] for c in manifest["commands"]] == [c.cmd for c in COMMANDS]
    assert {c["exit_code"] for c in manifest["commands"] if c["command"].startswith("dir ")} <= {0, 1}
    sim = lab.root / "sim" / "hosts" / lab.infected  # type: ignore[attr-defined]
    assert (by["win"].bundle / "netstat-ano.txt").read_bytes() == (sim / "netstat_ano.txt").read_bytes()
    lin = by["linux"].bundle
    assert b"sshd" in (lin / "wmic-process.csv").read_bytes()
    assert b"10.77.2.2:22" in (lin / "netstat-ano.txt").read_bytes()  # the namespace's own listener
    known = Path(env["WORMHUNT_SSH_KNOWN_HOSTS"]).read_text()
    assert lab.addr["win"] in known and lab.addr["linux"] in known  # trusted on first use, recorded

    # 2. the CLI: resume skips the two collected hosts, retries the rest, sweeps and reports them all
    stamps = {p: p.stat().st_mtime_ns for b in (by["win"].bundle, lin) for p in b.iterdir()}
    t0 = time.monotonic()
    proc = subprocess.run([*cli, "--json"], capture_output=True, text=True, env=env, timeout=300)
    cli_s = time.monotonic() - t0
    print(f"cli sweep (resume + investigation): {cli_s:.2f} s")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # resumed: not collected again
    assert cli_s < TIMEOUT + SLACK + 60  # the collection bound plus the investigation of two bundles
    doc = json.loads(proc.stdout)
    rows = {r["host"].upper(): r for r in doc["hosts"]}  # the case keeps host names in upper case
    assert rows[lab.infected.upper()]["verdict"] == "infected"  # type: ignore[attr-defined]
    assert rows[lab.infected.upper()]["family"] == "wannamine3"  # type: ignore[attr-defined]
    linux_host = json.loads((lin / "manifest.json").read_text())["host"].upper()
    assert rows[linux_host]["verdict"] in ("clean", "suspicious", "infected")
    assert rows[linux_host]["ip"] == lab.addr["linux"]
    unreach = {r["host"]: r["reason"] for r in doc["hosts"] if r["verdict"] == "unreachable"}
    print(f"verdicts: { {h: r['verdict'] for h, r in rows.items()} }")
    assert unreach == {
        f"{lab.addr['slow']}:22": "timeout",
        f"{lab.addr['badauth']}:22": "auth failed",
        f"{lab.addr['refused']}:22": "connection refused",
        f"{lab.addr['dead']}:22": unreach.get(f"{lab.addr['dead']}:22"),
    }
    assert unreach[f"{lab.addr['dead']}:22"] in ("no route to host", "timeout")
    assert doc["summary"]["unreachable"] == 4

    # 3. the table output, in Chinese, and no credential anywhere: stdout, stderr, bundles, case, logs
    table = subprocess.run([*cli, "--lang", "zh-CN"], capture_output=True, text=True, env=env, timeout=300)
    assert "无法连接" in table.stdout + table.stderr
    _assert_no_secret(lab, tmp_path, proc.stdout, proc.stderr, table.stdout, table.stderr)
    _assert_no_secret(lab, lab.root / "sim")
    for log in lab.root.glob("sshd-*.log"):
        _assert_no_secret(lab, log.parent, log.read_text(errors="replace"))


# -- security review: folder names, resume, CSV rows, output cap, abandoned attempts ------------------


def test_target_and_host_folders_never_collide() -> None:
    from wormhunt.respond import host_folder

    keys = [remote.Target(h, 22, "ssh").key for h in ("A/B", "A_B", "web01", "WEB01", "::1", "__1")]
    assert len({k.lower() for k in keys}) == len(keys), keys  # distinct even on a case-insensitive disk
    folders = [host_folder(h) for h in ("A/B", "A_B", "WEB01", "web01", "fe80::1", "fe80__1")]
    assert len({f.lower() for f in folders}) == len(folders), folders
    assert remote.Target("10.0.0.5", 22, "ssh").key == "10.0.0.5_22" and host_folder("WEB01") == "WEB01"


def test_resume_checks_names_and_address(tmp_path: Path) -> None:
    t = remote.Target("127.0.0.1", _free_port(), "ssh")
    folder = tmp_path / t.key
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (folder / "x.txt").write_text("x")

    def manifest(output: str, address: str = "127.0.0.1", port: int = t.port) -> None:
        (folder / "manifest.json").write_text(json.dumps(
            {"host": "H", "commands": [{"command": "x", "exit_code": 0, "output": output}],
             "remote": {"protocol": "ssh", "address": address, "port": port}}))  # fmt: skip

    for bad in ("../outside.txt", str(tmp_path / "outside.txt"), ".", "sub/x.txt"):
        manifest(bad)
        assert not remote.complete_bundle(folder, t), bad
    manifest("x.txt", address="192.0.2.9")  # another host's bundle copied here
    assert not remote.complete_bundle(folder, t)
    res = remote.sweep([t], remote.Credentials("u"), tmp_path, timeout=3, retries=0)
    assert res[0].status == "unreachable"  # collected again (refused on loopback), not skipped
    manifest("x.txt")
    assert remote.complete_bundle(folder, t)


def test_linux_rows_cannot_be_forged() -> None:
    import asyncio

    from wormhunt.sources import wmic
    from wormhunt.sources.base import MemorySink

    evil_args = 'sh -c x,"y"\r\nEVIL,forged row,,/bin/evil,evil,1,666'
    ps = (f"  100     1 Mon Jan  1 10:00:00 2024 sh {evil_args}\n"
          "  101   100 Mon Jan  1 10:00:01 2024 sleep sleep 5\n").encode()  # fmt: skip
    exe = b"100\t/tmp/a,b\"c\n101\t/bin/sleep\n"

    async def run(cmd: str) -> tuple[bytes, int]:
        if cmd == remote._LINUX_PS:
            return ps, 0
        if cmd == remote._LINUX_EXE:
            return exe, 0
        return b"", 0

    files, _ = asyncio.run(remote._linux_bundle(run, 'evil,host"\r\nX'))
    sink = MemorySink()
    wmic.parse(files["wmic-process.csv"].decode(), sink)
    rows = sink.of("processes")
    assert sorted(r["pid"] for r in rows) == [100, 101] and sink.skipped == 0
    assert {r["host"] for r in rows} == {"evilhostX"}
    assert "666" not in {str(r["pid"]) for r in rows}


def test_remote_output_is_capped() -> None:
    import asyncio

    class Stream:
        def __init__(self) -> None:
            self.given = 0

        async def read(self, n: int) -> bytes:
            self.given += n
            return b"x" * n  # endless output

    class Proc:
        def __init__(self) -> None:
            self.stdout = Stream()
            self.exit_status = None
            self.closed = False

        def close(self) -> None:
            self.closed = True

        async def wait_closed(self) -> None:
            raise AssertionError("waited for an endless command")

    class Conn:
        proc = Proc()

        async def create_process(self, cmd: str, **kw: object) -> Proc:
            assert kw.get("encoding") is None
            return self.proc

    conn = Conn()
    data, code, cut = asyncio.run(remote.read_capped(conn, "yes", limit=1_000_000))
    assert cut and len(data) == 1_000_000 and conn.proc.closed and code == -1
    assert conn.proc.stdout.given <= 1_000_000 + (1 << 16)
    assert remote.MAX_OUTPUT == 256 * 1024 * 1024


def test_an_abandoned_attempt_writes_nothing(tmp_path: Path) -> None:
    import threading

    folder = tmp_path / "h_22"
    done = threading.Event()
    done.set()
    with pytest.raises(Exception, match="abandoned"):
        remote._write_bundle(folder, {"host": "h", "commands": []}, {"a.txt": b"late"}, done)
    assert not folder.exists() and not list(tmp_path.iterdir())  # no bundle, no leftover part folder
    # two attempts never share a part folder
    remote._write_bundle(folder, {"host": "h", "commands": []}, {"a.txt": b"1"})
    remote._write_bundle(folder, {"host": "h", "commands": []}, {"a.txt": b"2"})
    assert (folder / "a.txt").read_bytes() == b"2" and [p.name for p in tmp_path.iterdir()] == ["h_22"]
