"""Hostile learnware models, built as source strings (no binary blobs): one :class:`Case` per attack.

Each model gets a context ``ctx`` (constructor kwarg) naming the host things it attacks: the dock home, sockets the
test listens on, a sentinel process, marker paths. A containment check that *fails* raises ``Escaped`` inside the model,
so the report would name it; the suite expects every such case to end USABLE (the attempt was contained) and the
host-side observers to have seen nothing.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

TEMPLATE = '''
import ctypes, json, mmap, os, signal, socket, stat, struct, subprocess, sys, threading, time
import numpy as np
from learnware.model import BaseModel


class Escaped(Exception):
    """A containment check failed."""


def touch(path):
    try:
        with open(path, "w") as fh:
            fh.write("marker")
        return True
    except OSError:
        return False


def readable(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(64)
    except OSError:
        return None


def proto_fds():
    """Pipes the runner writes answers to (any inherited write end of a FIFO but stdout/stderr)."""
    import fcntl
    out = []
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                out.append(fd)
        except OSError:
            pass
    return out

{module}

class Model(BaseModel):
    def __init__(self, ctx=None):
        super().__init__(input_shape=(2,), output_shape=(1,))
        self.ctx = ctx = ctx or {{}}
{init}

    def predict(self, X):
        ctx = self.ctx
{predict}
        return X.sum(axis=1)
'''


@dataclass(frozen=True)
class Case:
    """One hostile model and what the check must conclude about it."""

    id: str
    category: str
    predict: str = ""
    init: str = ""
    module: str = ""
    status: str = "usable"
    codes: tuple[str, ...] = ("ok",)
    reason: str = "probes passed"
    limits: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def source(self) -> str:
        def block(code: str, indent: int) -> str:
            return textwrap.indent(textwrap.dedent(code).strip("\n"), " " * indent) if code.strip() else ""
        return TEMPLATE.format(module=textwrap.dedent(self.module), init=block(self.init, 8),
                               predict=block(self.predict, 8))


def bad(case_id: str, category: str, *, codes: tuple[str, ...], reason: str, **kw: Any) -> Case:
    return Case(case_id, category, status="nonusable", codes=codes, reason=reason, **kw)


TIMEOUT = ("model_timeout",)
HANG = {"call_timeout": 3}  # cases whose expected outcome is a timeout; the others get a generous one
CRASH = ("model_crashed",)
RAISED = ("model_runtime_error",)

CASES: list[Case] = [
    # -- hang ------------------------------------------------------------------------------------------------------
    bad("hang-predict-sleep", "hang", predict="time.sleep(10 ** 6)", codes=TIMEOUT,
        reason=r"did not answer predict within", limits=HANG),
    bad("hang-import-sleep", "hang", module="time.sleep(10 ** 6)", codes=TIMEOUT, reason=r"did not answer startup",
        limits={"startup_timeout": 4}),
    bad("hang-init-busy-loop", "hang", init="while True:\n    pass", codes=TIMEOUT,
        reason=r"did not answer startup", limits={"startup_timeout": 4}),
    bad("hang-blocking-read", "hang", predict="r, w = os.pipe()\nos.read(r, 1)", codes=TIMEOUT,
        reason=r"did not answer predict", limits=HANG),
    bad("hang-stops-itself", "hang", predict="os.kill(os.getpid(), signal.SIGSTOP)", codes=TIMEOUT,
        reason=r"did not answer predict", limits=HANG),
    # -- crash -----------------------------------------------------------------------------------------------------
    bad("crash-segfault", "crash", predict="ctypes.string_at(0)", codes=CRASH, reason=r"died during predict .*SEGV"),
    bad("crash-exit-status", "crash", predict="os._exit(7)", codes=CRASH, reason=r"died during predict .*exit status 7"),
    bad("crash-abort", "crash", predict="os.abort()", codes=CRASH, reason=r"died during predict .*ABRT"),
    bad("crash-import-raises", "crash", module="raise RuntimeError('boom at import')",
        codes=("model_import_failed",), reason=r"^importing or constructing the model failed: RuntimeError$"),
    bad("crash-missing-module", "crash", module="import lwdock_no_such_module_zz",
        codes=("model_import_failed",), reason=r"ModuleNotFoundError \(module lwdock_no_such_module_zz\)"),
    bad("crash-syntax-error", "crash", files={"broken.py": "def (:\n"}, module="from . import broken",
        codes=("model_import_failed",), reason=r"SyntaxError"),
    bad("crash-infinite-recursion", "crash", predict="def f(n):\n    return f(n + 1) + 1\nf(0)",
        codes=RAISED, reason=r"^predict raised RecursionError"),
    # -- fork ------------------------------------------------------------------------------------------------------
    bad("fork-bomb", "fork", predict="while True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        codes=TIMEOUT + CRASH, reason=r"(did not answer|died during) predict", limits=HANG),
    Case("fork-orphan-daemon", "fork", predict="""
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(10 ** 6)
            os._exit(0)
    """),
    Case("fork-detached-shell", "fork", predict="subprocess.Popen(['/bin/sh', '-c', 'sleep 1000 &'], "
                                                "start_new_session=True).wait()"),
    bad("fork-thread-flood", "fork",
        predict="ts = [threading.Thread(target=time.sleep, args=(60,), daemon=True) for _ in range(5000)]\n"
                "[t.start() for t in ts]", codes=RAISED, reason=r"predict raised RuntimeError"),
    # -- network ---------------------------------------------------------------------------------------------------
    Case("net-tcp-to-host", "network", predict="""
        try:
            socket.create_connection(("127.0.0.1", ctx["tcp_port"]), timeout=2).sendall(b"exfiltrated")
        except OSError:
            pass
        else:
            raise Escaped("tcp")
    """),
    Case("net-outbound", "network", predict="""
        for host in ("1.1.1.1", "8.8.8.8"):
            try:
                socket.create_connection((host, 53), timeout=2)
            except OSError:
                continue
            raise Escaped("outbound")
    """),
    Case("net-udp-to-host", "network", predict="""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"exfiltrated", ("127.0.0.1", ctx["udp_port"]))
        except OSError:
            pass
    """),
    Case("net-abstract-unix", "network", predict="""
        try:
            socket.socket(socket.AF_UNIX).connect("\\0" + ctx["abstract"])
        except OSError:
            pass
        else:
            raise Escaped("abstract")
    """),
    # -- unix sockets ----------------------------------------------------------------------------------------------
    Case("sock-host-run", "unix-socket", predict="""
        for p in [ctx["run_socket"], "/run/dbus/system_bus_socket", "/var/run/docker.sock", "/run/docker.sock",
                  "/run/postgresql/.s.PGSQL.5432", "/var/run/postgresql/.s.PGSQL.5432"]:
            try:
                socket.socket(socket.AF_UNIX).connect(p)
            except OSError:
                continue
            raise Escaped(p)
        if os.listdir("/run"):
            raise Escaped("run not empty")
    """),
    Case("sock-tmp-run-like", "unix-socket", predict="""
        try:
            socket.socket(socket.AF_UNIX).connect(ctx["tmp_socket"])
        except OSError:
            pass
        else:
            raise Escaped("tmp socket")
    """),
    # -- host secrets ----------------------------------------------------------------------------------------------
    Case("secret-etc-shadow", "host-secrets", predict="""
        for p in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/ssh_host_rsa_key"):
            if readable(p) is not None:
                raise Escaped(p)
        if b"root:" in (readable("/etc/passwd") or b""):
            raise Escaped("host passwd")
    """),
    Case("secret-dock-catalog", "host-secrets", predict="""
        for p in (ctx["home"] + "/catalog.duckdb", ctx["home"] + "/mlflow.db"):
            if readable(p) is not None:
                raise Escaped(p)
        if os.path.exists(ctx["home"]):
            raise Escaped("home visible")
    """),
    Case("secret-root-home", "host-secrets", predict="""
        for p in ("/root/.bash_history", "/root/.ssh", "/root/.cache", "/root/.config", "/home"):
            if os.path.exists(p):
                raise Escaped(p)
        if os.path.isdir("/root") and set(os.listdir("/root")) - {".pyenv"}:
            raise Escaped("root listing")
    """),
    Case("secret-env-vars", "host-secrets", predict="""
        blobs = [json.dumps(dict(os.environ))]
        for p in ("/proc/self/environ", "/proc/1/environ", "/proc/1/cmdline"):
            blobs.append(str(readable(p)))
        if any(ctx["env_secret"] in b for b in blobs):
            raise Escaped("env")
    """),
    Case("secret-host-processes", "host-secrets", predict="""
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        if len(pids) > 10 or ctx["dock_pid"] in pids and b"pytest" in (readable(f"/proc/{ctx['dock_pid']}/cmdline") or b""):
            raise Escaped("host processes visible")
    """),
    Case("secret-dock-source", "host-secrets", predict="""
        for p in (ctx["runner_dir"], os.path.dirname(ctx["runner_dir"]), "/sys", "/etc/hostname"):
            if os.path.exists(p):
                raise Escaped(p)
        if socket.gethostname() == ctx["hostname"]:
            raise Escaped("hostname")
    """),
    bad("secret-file-content-in-message", "host-secrets", files={"secret.txt": "OWN-{token}\n"},
        predict="raise ValueError(open(os.path.join(os.path.dirname(__file__), 'secret.txt')).read())",
        codes=RAISED, reason=r"^predict raised ValueError \(the model's message is not stored\)$"),
    bad("secret-mountinfo-in-message", "host-secrets", predict="raise ValueError(open('/proc/self/mountinfo').read())",
        codes=RAISED, reason=r"^predict raised ValueError"),
    bad("secret-huge-escape-message", "host-secrets",
        predict="raise type('E' * 500, (Exception,), {})('\\x1b]0;pwned\\x07\\x1b[31m' + 'x' * 10 ** 7)",
        codes=RAISED, reason=r"^predict raised Exception "),
    # -- memory ----------------------------------------------------------------------------------------------------
    bad("mem-bomb", "memory", predict="np.ones(10 * 1024 ** 3 // 8)", codes=("model_out_of_memory",),
        reason=r"ran out of memory in predict"),
    bad("mem-gradual", "memory", predict="hog = []\nwhile True:\n    hog.append(bytearray(64 * 1024 ** 2))",
        codes=("model_out_of_memory",), reason=r"ran out of memory in predict"),
    bad("mem-mmap", "memory", predict="mmap.mmap(-1, 8 * 1024 ** 3)", codes=RAISED + ("model_out_of_memory",),
        reason=r"(predict raised OSError|ran out of memory)"),
    bad("mem-tmpfs-fill", "memory",
        predict="for i in range(1000):\n    open(f'/tmp/fill{i}', 'wb').write(b'x' * 8 * 1024 ** 2)",
        codes=RAISED, reason=r"predict raised OSError"),
    bad("mem-shm-fill", "memory",
        predict="for i in range(1000):\n    open(f'/dev/shm/fill{i}', 'wb').write(b'x' * 8 * 1024 ** 2)",
        codes=RAISED, reason=r"predict raised OSError"),
    # -- huge or malformed output ----------------------------------------------------------------------------------
    bad("out-huge-array", "output", predict="return np.zeros((len(X), 512 * 1024))",
        codes=("model_output_too_large",), reason=r"^output too large: predict answered \d+ bytes, the limit"),
    bad("out-forged-huge-frame", "output", predict="""
        head = json.dumps({"ok": True, "kind": "result", "arrays": [2 ** 34]}).encode()
        for fd in proto_fds():
            os.write(fd, b"LWD1" + struct.pack(">I", len(head)) + head)
    """, codes=("model_output_too_large",), reason=r"output too large"),
    bad("out-garbage-frame", "output", predict="""
        for fd in proto_fds():
            os.write(fd, b"GARBAGE!" * 8)
    """, codes=("model_protocol_violation",), reason=r"wrote to the protocol channel"),
    bad("out-wrong-length", "output", predict="return np.zeros(len(X) + 1)", codes=("model_output_malformed",),
        reason=r"first dimension must equal"),
    bad("out-nan", "output", predict="return np.full(len(X), np.nan)", codes=("model_output_malformed",),
        reason=r"NaN or infinite"),
    bad("out-dict", "output", predict="return {'a': 1}", codes=("model_output_malformed",),
        reason=r"^predict output rejected: not an int/float array"),
    bad("out-absurd-input-shape", "output", init="self.input_shape = tuple(range(1, 50000))",
        codes=("model_shape_invalid",), reason=r"invalid input_shape"),
    # -- stderr / stdout floods ------------------------------------------------------------------------------------
    Case("flood-stderr-lines", "stderr", predict="""
        line = b"flood " * 20 + b"\\n"
        for _ in range(200_000):
            os.write(2, line)
    """),
    Case("flood-stderr-no-newline", "stderr", predict="""
        chunk = b"x" * (1 << 20)
        for _ in range(200):
            os.write(2, chunk)
    """),
    Case("flood-stdout-print", "stderr", predict="""
        for _ in range(20_000):
            print("chatter " * 100)
    """),
    Case("flood-terminal-escapes", "stderr", predict="""
        sys.stderr.write("\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\u202eevil\\r\\n" * 1000)
        sys.stderr.flush()
    """),
    # -- signals ---------------------------------------------------------------------------------------------------
    bad("sig-ignores-sigterm", "signals",
        predict="for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\n"
                "time.sleep(10 ** 6)", codes=TIMEOUT, reason=r"did not answer predict", limits=HANG),
    Case("sig-kills-parent", "signals", predict="""
        try:
            os.kill(os.getppid(), signal.SIGKILL)
        except OSError:
            pass
    """),
    Case("sig-kills-everything", "signals", predict="""
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    """),
    Case("sig-kills-host-process", "signals", predict="""
        for pid in (ctx["sentinel_pid"], ctx["dock_pid"]):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    """),
    # -- writes outside its dir ------------------------------------------------------------------------------------
    Case("write-host-paths", "writes", predict="""
        for p in ctx["markers"]:
            touch(p)
    """),
    Case("write-readonly-system", "writes", predict="""
        for p in ("/usr/lwdock-marker", sys.prefix + "/lwdock-marker", sys.base_prefix + "/lwdock-marker",
                  "/etc/lwdock-marker", "/lwdock-marker"):
            if touch(p):
                raise Escaped(p)
    """),
    Case("write-symlink-escape", "writes", predict="""
        here = os.path.dirname(__file__)
        os.symlink(ctx["home"], os.path.join(here, "home-link"))
        os.symlink("/etc/shadow", os.path.join(here, "shadow-link"))
        if readable(os.path.join(here, "shadow-link")) is not None or touch(os.path.join(here, "home-link", "x")):
            raise Escaped("symlink")
    """),
    bad("write-huge-file", "writes",
        predict="open(os.path.join(os.path.dirname(__file__), 'big.bin'), 'wb').write(b'x' * (64 * 1024 ** 2))",
        codes=RAISED + ("model_out_of_memory",), reason=r"(predict raised OSError|ran out of memory)"),
    # -- reading other learnwares ----------------------------------------------------------------------------------
    Case("other-learnware-in-home", "other-learnwares", predict="""
        if readable(ctx["other_learnware"]) is not None:
            raise Escaped("other learnware")
    """),
    Case("other-running-learnware", "other-learnwares", predict="""
        seen = []
        for root in ("/tmp", "/sandbox", "/dev/shm"):
            for dirpath, _, files in os.walk(root):
                for f in files:
                    data = readable(os.path.join(dirpath, f)) or b""
                    if ctx["victim_secret"].encode() in data:
                        raise Escaped(os.path.join(dirpath, f))
    """),
    Case("other-envs-and-runtimes", "other-learnwares", predict="""
        if os.path.exists(ctx["home"] + "/runtimes") or os.path.exists(ctx["home"] + "/learnwares"):
            raise Escaped("runtimes")
        for p in ("/sandbox/env", "/sandbox"):
            if os.path.isdir(p) and set(os.listdir(p)) - {"learnware", "home", "runtime", "env", "etc"}:
                raise Escaped(p)
    """),
]
