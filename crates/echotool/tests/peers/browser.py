#!/usr/bin/env python3
"""A real browser as a test peer: headless Chromium, driven over the DevTools protocol.

echotool's ws listener serves a page (crates/echotool-ws/src/page.html) that is the
tutorial's client.  This script proves the page works in a browser, the way a user uses it:
it starts Debian's `chromium` headless with a throwaway profile, opens a URL, waits until
the page is ready, types a line into the input and presses Enter (real key events via
`Input.insertText` and `Input.dispatchKeyEvent`, not a script setting the value), then
polls an element until the echo shows up, and prints one JSON object on stdout.

    python3 browser.py URL [--line TEXT] [--expect TEXT] [--input '#line']
        [--output '#log'] [--ready JS] [--timeout SECS] [--chromium PATH]
    python3 browser.py --self-test

--expect defaults to --line.  --ready is a JavaScript expression that must become truthy
before typing (default: the input exists and the document has loaded); for echotool's page
use `document.getElementById('state').textContent === 'open'`.  --self-test serves a
throwaway page with `python3 -m http.server` on 127.0.0.1 against ws_echo.py, and checks the
driver itself on this machine.

Output: {"ok": true|false, "output": <text of the output element>, "error": ...,
"console": [...], "chromium": <version>, "seconds": {"launch", "devtools", "load", "echo",
"total"}}.  Exit 0 when the text was found, 1 otherwise.

Every wait is bounded by --timeout (default 30 s) in total.  Chromium and its children are
killed, and the profile directory removed, whatever happens.  Chromium never reaches past
this machine: host names do not resolve (except localhost) and every connection that is not
to loopback goes to a proxy at 127.0.0.1:9, where nothing listens (see `chromium_args`).
Only `websockets` and the standard library are used; no Playwright, whose browser download
needs the internet.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.sync.client import connect

CANDIDATES = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome")


class Failure(Exception):
    """What went wrong, in words: becomes the "error" of the JSON result."""


class Deadline:
    """One time budget for the whole run: every wait takes what is left of it."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, what):
        left = self.end - time.monotonic()
        if left <= 0:
            raise Failure(f"timed out {what}")
        return left


def find_chromium(explicit):
    if explicit:
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise Failure("no chromium found: install Debian's `chromium` package "
                  "(scripts/test.sh does), or pass --chromium PATH")


def chromium_args(binary, profile):
    args = [
        binary,
        "--headless",
        # Port 0: Chromium picks a free port and writes it to DevToolsActivePort in the profile.
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        # CI containers often have a 64 MiB /dev/shm, too small for Chromium.
        "--disable-dev-shm-usage",
        "--disable-extensions",
        # No calls home: updates, sync, metrics, safe browsing, translation, ...
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--metrics-recording-only",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        # And if anything still tries: no name resolves but localhost, and any connection that
        # is not to loopback goes to a proxy on the discard port of 127.0.0.1, which refuses.
        # Loopback itself bypasses the proxy (Chromium's implicit rule).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ]
    if os.geteuid() == 0:
        # Chromium refuses to run as root with its sandbox (it would need a setuid helper or
        # user namespaces); CI runs as root. The page under test is our own, on loopback.
        args.append("--no-sandbox")
    args.append("about:blank")
    return args


def wait_for_devtools(proc, profile, deadline):
    """The browser's DevTools WebSocket URL, from the DevToolsActivePort file Chromium writes."""
    active = Path(profile) / "DevToolsActivePort"
    while True:
        if proc.poll() is not None:
            raise Failure(f"chromium exited with {proc.returncode} before DevTools was up; "
                          f"its output: {tail(profile)}")
        try:
            port, path = active.read_text().split("\n")[:2]
            if port and path:
                return f"ws://127.0.0.1:{port.strip()}{path.strip()}"
        except (FileNotFoundError, ValueError):
            pass
        deadline.left("waiting for chromium's DevToolsActivePort")
        time.sleep(0.05)


def tail(profile):
    try:
        return (Path(profile) / "chromium.log").read_text()[-2000:]
    except OSError:
        return "(no log)"


class DevTools:
    """A minimal DevTools protocol client: one browser connection, flat sessions."""

    def __init__(self, ws, deadline):
        self.ws = ws
        self.deadline = deadline
        self.next_id = 0
        self.console = []
        self.events = []

    def call(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=self.deadline.left(f"waiting for {method}")))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failure(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.note_event(reply)

    def wait_event(self, method, session):
        """Waits for an event of `session` (one already seen counts), within the deadline."""
        while True:
            if any(e.get("method") == method and e.get("sessionId") == session
                   for e in self.events):
                return
            self.note_event(json.loads(self.ws.recv(timeout=self.deadline.left(
                f"waiting for {method}"))))

    def note_event(self, event):
        """Keeps what the page said on its console, and its uncaught errors, for the report."""
        if "method" in event:
            self.events.append({"method": event["method"], "sessionId": event.get("sessionId")})
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", a.get("description", "")))
                                         for a in params.get("args", [])))
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append("exception: " + str(details.get("exception", {}).get(
                "description", details.get("text"))))

    def evaluate(self, session, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session)
        if "exceptionDetails" in result:
            raise Failure(f"evaluating {expression!r}: "
                          f"{result['exceptionDetails'].get('exception', {}).get('description')}")
        return result.get("result", {}).get("value")

    def poll(self, session, expression, what, done=bool):
        """Evaluates `expression` until `done(value)` (every 50 ms, within the deadline); on
        timeout the error says what was awaited and what was last seen."""
        value = None
        try:
            while True:
                value = self.evaluate(session, expression)
                if done(value):
                    return value
                self.deadline.left(what)
                time.sleep(0.05)
        except (Failure, TimeoutError) as e:
            raise Failure(f"timed out {what}; last seen: {value!r}") from e

    def close_browser(self):
        try:
            self.call("Browser.close")
        except Exception:  # the browser may be gone already; it is killed next anyway
            pass


def js(value):
    return json.dumps(value)


def type_and_read(args, devtools, timings, started):
    """Opens the page, types the line, presses Enter, and waits for the expected text."""
    target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = devtools.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
    devtools.call("Runtime.enable", session=session)
    devtools.call("Page.enable", session=session)
    navigated = devtools.call("Page.navigate", {"url": args.url}, session)
    if navigated.get("errorText"):
        raise Failure(f"opening {args.url}: {navigated['errorText']}")
    # Evaluating while the page is still being replaced can go unanswered: wait for the load.
    devtools.wait_event("Page.loadEventFired", session)
    ready = args.ready or (f"document.readyState === 'complete' && "
                           f"!!document.querySelector({js(args.input)})")
    devtools.poll(session, f"!!({ready})", f"waiting for the page to be ready ({ready})")
    timings["load"] = time.monotonic() - started
    devtools.evaluate(session, f"document.querySelector({js(args.input)}).focus()")
    devtools.call("Input.insertText", {"text": args.line}, session)
    for kind in ("keyDown", "keyUp"):
        # `text: "\r"` makes the key press an Enter that submits the form, as typing does.
        devtools.call("Input.dispatchKeyEvent",
                      {"type": kind, "key": "Enter", "code": "Enter",
                       "windowsVirtualKeyCode": 13, "text": "\r"}, session)
    output = f"document.querySelector({js(args.output)})"
    expect = args.expect if args.expect is not None else args.line
    text = devtools.poll(session, f"{output} && {output}.innerText",
                         f"waiting for {expect!r} in {args.output}",
                         lambda value: isinstance(value, str) and expect in value)
    timings["echo"] = time.monotonic() - started
    return text


def run(args):
    deadline = Deadline(args.timeout)
    started = time.monotonic()
    timings = {}
    result = {"ok": False, "url": args.url, "line": args.line}
    profile = tempfile.mkdtemp(prefix="echotool-chromium-")
    proc = None
    try:
        binary = find_chromium(args.chromium)
        with open(Path(profile) / "chromium.log", "wb") as log:
            # Its own process group, so that the renderer and zygote children die with it.
            proc = subprocess.Popen(chromium_args(binary, profile), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        timings["launch"] = time.monotonic() - started
        url = wait_for_devtools(proc, profile, deadline)
        with connect(url, max_size=None, proxy=None, compression=None,
                     open_timeout=deadline.left("connecting to DevTools")) as ws:
            devtools = DevTools(ws, deadline)
            timings["devtools"] = time.monotonic() - started
            try:
                result["chromium"] = devtools.call("Browser.getVersion").get("product")
                result["output"] = type_and_read(args, devtools, timings, started)
                result["ok"] = True
            finally:
                result["console"] = devtools.console
                devtools.close_browser()
    except Failure as e:
        result["error"] = str(e)
    except (OSError, TimeoutError, ValueError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        stop(proc)
        shutil.rmtree(profile, ignore_errors=True)
    timings["total"] = time.monotonic() - started
    result["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    return result


def stop(proc):
    """Ends Chromium and every process it started (its process group), bounded."""
    if proc is None:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


SELF_TEST_PAGE = """<!doctype html><meta charset="utf-8"><title>browser.py self-test</title>
<form id="f"><input id="line"></form><pre id="log"></pre>
<script>
const ws = new WebSocket(new URLSearchParams(location.search).get("ws"));
ws.onopen = () => document.title = "open";
ws.onmessage = (e) => document.getElementById("log").textContent += "echo: " + e.data + "\\n";
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault(); ws.send(document.getElementById("line").value);
};
</script>"""


def self_test(args):
    """The driver on this machine: a throwaway page from `python3 -m http.server` against
    ws_echo.py, both on 127.0.0.1."""
    here = Path(__file__).resolve().parent
    site = tempfile.mkdtemp(prefix="echotool-page-")
    Path(site, "index.html").write_text(SELF_TEST_PAGE)
    procs = []
    try:
        echo = subprocess.Popen([sys.executable, str(here / "ws_echo.py"), "server"],
                                stderr=subprocess.PIPE, text=True)
        procs.append(echo)
        ws_url = first_line(echo, "listening on ", args.timeout)
        http = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1",
                                 "--directory", site, "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        procs.append(http)
        port = first_line(http, "port ", args.timeout).split()[0]
        args.url = f"http://127.0.0.1:{port}/index.html?ws={ws_url}"
        args.line = args.line or "hello from chromium"
        args.expect = f"echo: {args.line}"
        args.ready = "document.title === 'open'"
        return run(args)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(site, ignore_errors=True)


def first_line(proc, marker, timeout):
    """What follows `marker` in the first line of proc's output containing it (bounded: the
    peers print it at once, and a peer that dies ends the stream)."""
    stream = proc.stderr or proc.stdout
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = stream.readline()
        if not line:
            raise Failure(f"{proc.args[1:3]} exited before printing {marker!r}")
        if marker in line:
            return line.split(marker, 1)[1].strip()
    raise Failure(f"no {marker!r} from {proc.args[1:3]} within {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--line", default="")
    parser.add_argument("--expect")
    parser.add_argument("--input", default="#line")
    parser.add_argument("--output", default="#log")
    parser.add_argument("--ready")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--chromium")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        try:
            result = self_test(args)
        except Failure as e:
            result = {"ok": False, "error": str(e)}
    elif not args.url:
        parser.error("give a URL, or --self-test")
    else:
        args.line = args.line or "hello from chromium"
        result = run(args)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
