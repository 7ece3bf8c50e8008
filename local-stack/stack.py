#!/usr/bin/env python3
"""Start, stop and inspect the local AWS stack.

  python local-stack/stack.py up [--no-watch] [--workspace DIR]
  python local-stack/stack.py down
  python local-stack/stack.py status

`up` starts, each in its own process group, logging to .local-stack/<name>.log (rewritten each up):
  moto     moto_server on 127.0.0.1:$MOTO_PORT_REAL (4567), with MOTO_PORT=<router port> so moto's
           Step Functions interpreter invokes Lambdas through the router; execute mode switched on.
  router   local-stack/router.py on 127.0.0.1:$BLUEGREEN_ROUTER_PORT (4566): the AWS endpoint. It
           records every call a function makes in .local-stack/calls.jsonl (emptied here).
  lambda   `cargo lambda watch` on 127.0.0.1:$BLUEGREEN_LAMBDA_PORT (9000), run from the workspace,
           functions get AWS_ENDPOINT_URL=<router>, dummy credentials, TABLE_NAME, STATE_MACHINE_ARN, RUST_LOG.
           Skipped with --no-watch (or BLUEGREEN_NO_WATCH=1), e.g. when a test serves Lambdas itself.
It then writes .local-stack/stack.json. `up` when everything is already up is a no-op; a failed
`up` stops what it started. `down` stops every process group listed in stack.json.
Exit codes: 0 ok, 1 failure, 3 (status) not running / partly running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STATE_DIR = ROOT / ".local-stack"
STATE_FILE = STATE_DIR / "stack.json"
HOST = "127.0.0.1"

MOTO_PORT = int(os.environ.get("MOTO_PORT_REAL", "4567"))
ROUTER_PORT = int(os.environ.get("BLUEGREEN_ROUTER_PORT", "4566"))
LAMBDA_PORT = int(os.environ.get("BLUEGREEN_LAMBDA_PORT", "9000"))
# Instances per function that `cargo lambda watch` runs at once: concurrent invocations of one
# function (100 simultaneous API calls, a chaos campaign's 10 lanes) really overlap, as on
# Lambda, instead of queueing behind one instance.
LAMBDA_CONCURRENCY = int(os.environ.get("BLUEGREEN_LAMBDA_CONCURRENCY", "10"))
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:bluegreen-blue-green"
# Every AWS call a controller function makes, with what IAM authorizes for it (authz.py); read by
# the role check (tests/tests/iam_calls.rs). Emptied when the stack starts.
CALLS_LOG = STATE_DIR / "calls.jsonl"
# The stack parameters the provisioned environments need (provision.py); emptied with CALLS_LOG.
PARAMETERS = STATE_DIR / "parameters.json"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
ORDER = ("moto", "router", "lambda")


class StackError(Exception):
    pass


def say(msg: str) -> None:
    print(f"stack: {msg}", file=sys.stderr, flush=True)


def venv_bin() -> Path:
    for candidate in (ROOT / ".venv" / "bin", Path(sys.executable).parent):
        if (candidate / "moto_server").exists():
            return candidate
    raise StackError("moto_server not found: run `python3 -m venv .venv && .venv/bin/pip install -r local-stack/requirements.txt`")


def function_env(router_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": router_url,
        # No AWS_SDK_UA_APP_ID: each function then names itself in its user agent
        # (app/<function>), so the router's stats, faults and recorded calls know who called.
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TABLE_NAME": "bluegreen",
        # provision.py base creates the state machine under the name template.yaml gives it in a
        # stack named bluegreen.
        "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
        # The GitHub roles of a stack named bluegreen, as template.yaml names them for the API
        # (separated by a space: --env-vars splits on commas).
        "CI_ROLE_ARNS": "arn:aws:iam::123456789012:role/bluegreen-github-deploy "
                        "arn:aws:iam::123456789012:role/bluegreen.promotion/bluegreen-promotion",
        "RUST_LOG": "info",
    }


# --------------------------------------------------------------------------------------------
# probes
# --------------------------------------------------------------------------------------------
def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def tcp_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def ours(proc: dict) -> bool:
    """The pid still runs the program we started (guards against pid reuse)."""
    pid = proc.get("pid")
    if not pid or not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    return proc.get("match", "") in cmdline


def wait_for(what: str, check, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} while starting; see {log}:\n{tail(log)}")
        time.sleep(0.2)
    raise StackError(f"{what} did not answer within {timeout:.0f} s; see {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------
# state file
# --------------------------------------------------------------------------------------------
def load_state() -> dict | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def save_state(state: dict) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(STATE_FILE)


def healthy(state: dict) -> dict[str, bool]:
    eps = state.get("endpoints", {})
    procs = state.get("processes", {})
    result = {}
    for name, proc in procs.items():
        ok = ours(proc)
        if ok and name == "moto":
            ok = http_ok(eps["moto"] + "/moto-api/")
        elif ok and name == "router":
            ok = http_ok(eps["aws"] + "/_local/health")
        elif ok and name == "lambda":
            ok = tcp_open(int(eps["lambda"].rsplit(":", 1)[1]))
        result[name] = ok
    return result


# --------------------------------------------------------------------------------------------
# up / down / status
# --------------------------------------------------------------------------------------------
def start(name: str, cmd: list[str], env: dict[str, str], cwd: Path, match: str, state: dict) -> subprocess.Popen:
    log = STATE_DIR / f"{name}.log"
    fh = open(log, "wb")  # one run per log file, so a failure's tail is this run's
    fh.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
    fh.flush()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)
    fh.close()
    state["processes"][name] = {"pid": proc.pid, "pgid": proc.pid, "log": str(log), "cmd": cmd, "match": match}
    save_state(state)  # recorded at once, so `down` can clean up even if this script dies
    say(f"{name}: started pid {proc.pid} ({' '.join(cmd[:3])} ...), log {log}")
    return proc


def up(args) -> int:
    existing = load_state()
    if existing:
        health = healthy(existing)
        wanted = [n for n in ORDER if n != "lambda" or not args.no_watch]
        if health and all(health.get(n) for n in wanted) and all(health.values()):
            say("already up")
            print(json.dumps(summary(existing)))
            return 0
        say(f"stale or partial stack found ({health}); stopping it first")
        down(None)

    bindir = venv_bin()
    for port, what in ((MOTO_PORT, "moto"), (ROUTER_PORT, "router"), (LAMBDA_PORT, "cargo lambda watch")):
        if what == "cargo lambda watch" and args.no_watch:
            continue
        if tcp_open(port):
            raise StackError(f"port {port} ({what}) is already in use by another process; free it or set "
                             "MOTO_PORT_REAL / BLUEGREEN_ROUTER_PORT / BLUEGREEN_LAMBDA_PORT")

    router_url = f"http://{HOST}:{ROUTER_PORT}"
    moto_url = f"http://{HOST}:{MOTO_PORT}"
    lambda_url = f"http://{HOST}:{LAMBDA_PORT}"
    STATE_DIR.mkdir(exist_ok=True)
    state = {
        "root": str(ROOT),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "endpoints": {"aws": router_url, "moto": moto_url, "lambda": lambda_url},
        "function_env": function_env(router_url),
        "processes": {},
    }
    base_env = dict(os.environ)
    base_env["PATH"] = f"{bindir}{os.pathsep}{base_env.get('PATH', '')}"
    base_env["PYTHONUNBUFFERED"] = "1"
    try:
        # moto ------------------------------------------------------------------------------------
        env = dict(base_env, MOTO_PORT=str(ROUTER_PORT))
        proc = start("moto", [str(bindir / "moto_server"), "-H", HOST, "-p", str(MOTO_PORT)], env, ROOT,
                     "moto_server", state)
        wait_for(f"moto on {moto_url}", lambda: http_ok(moto_url + "/moto-api/"), args.timeout, proc,
                 STATE_DIR / "moto.log")
        req = urllib.request.Request(moto_url + "/moto-api/config", data=json.dumps(MOTO_CONFIG).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status not in (200, 201):
                raise StackError(f"moto refused its config: HTTP {resp.status}")
        say("moto: up, Step Functions execute mode on")

        # router -----------------------------------------------------------------------------------
        CALLS_LOG.write_text("")
        PARAMETERS.write_text("{}\n")
        env = dict(base_env, BLUEGREEN_CALLS_LOG=str(CALLS_LOG), BLUEGREEN_STATE_MACHINE_ARN=STATE_MACHINE_ARN)
        proc = start("router", [str(bindir / "python"), str(HERE / "router.py"), "--port", str(ROUTER_PORT),
                                "--moto", moto_url, "--lambda", lambda_url], env, ROOT, "router.py", state)
        wait_for(f"router on {router_url}", lambda: http_ok(router_url + "/_local/health"), args.timeout, proc,
                 STATE_DIR / "router.log")
        say(f"router: up at {router_url}")

        # cargo lambda watch ---------------------------------------------------------------------
        if not args.no_watch:
            fenv = function_env(router_url)
            env = dict(base_env, **fenv)
            env_vars = ",".join(f"{k}={v}" for k, v in fenv.items())
            cmd = ["cargo", "lambda", "watch", "--invoke-address", HOST, "--invoke-port", str(LAMBDA_PORT),
                   "--ignore-changes", "--concurrency", str(LAMBDA_CONCURRENCY), "--env-vars", env_vars]
            if not shutil.which("cargo", path=env["PATH"]):
                raise StackError("cargo not found on PATH")
            proc = start("lambda", cmd, env, Path(args.workspace), "lambda", state)
            wait_for(f"cargo lambda watch on {lambda_url}", lambda: tcp_open(LAMBDA_PORT), args.watch_timeout, proc,
                     STATE_DIR / "lambda.log")
            say(f"lambda: cargo lambda watch accepting on {lambda_url} (first invoke of a function builds it)")
        save_state(state)
    except BaseException as exc:
        say(f"up failed: {exc}")
        down(None)
        return 1
    print(json.dumps(summary(state)))
    return 0


def summary(state: dict) -> dict:
    return {"endpoints": state["endpoints"], "pids": {n: p["pid"] for n, p in state["processes"].items()},
            "state_file": str(STATE_FILE)}


def stop_group(name: str, proc: dict, grace: float = 10.0) -> None:
    pid, pgid = proc.get("pid"), proc.get("pgid")
    if not pid or not ours(proc):
        say(f"{name}: not running")
        return
    # cargo lambda watch runs each function in a process group of its own: note them first
    groups = [pgid] + sorted({g for g in (pgid_of(d) for d in descendants(pid)) if g and g != pgid})
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    for group in groups:  # whatever is left of our groups (function processes), and any straggler
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    say(f"{name}: stopped (pid {pid})")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def down(_args) -> int:
    state = load_state()
    if not state:
        say("not running (no stack.json)")
        return 0
    procs = state.get("processes", {})
    for name in reversed(ORDER):
        if name in procs:
            stop_group(name, procs[name])
    try:
        STATE_FILE.unlink()
    except FileNotFoundError:
        pass
    return 0


def status(_args) -> int:
    state = load_state()
    if not state:
        print(json.dumps({"running": False}))
        return 3
    health = healthy(state)
    out = {"running": bool(health) and all(health.values()), "health": health, "endpoints": state.get("endpoints"),
           "processes": {n: {"pid": p["pid"], "log": p["log"]} for n, p in state.get("processes", {}).items()}}
    print(json.dumps(out, indent=2))
    return 0 if out["running"] else 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--no-watch", action="store_true", default=os.environ.get("BLUEGREEN_NO_WATCH") == "1",
                   help="do not start cargo lambda watch")
    u.add_argument("--workspace", default=str(ROOT), help="Cargo workspace cargo lambda watch serves")
    u.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for moto and the router")
    u.add_argument("--watch-timeout", type=float, default=120.0, help="seconds to wait for cargo lambda watch")
    sub.add_parser("down")
    sub.add_parser("status")
    args = ap.parse_args()
    try:
        sys.exit({"up": up, "down": down, "status": status}[args.cmd](args))
    except StackError as exc:
        say(f"error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
