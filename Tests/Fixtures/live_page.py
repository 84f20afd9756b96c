#!/usr/bin/env python3
"""Test fixture: headless Chromium driven over its DevTools pipe.

usage: live_page.py CHROMIUM URL SELECTOR TIMEOUT COMMAND...
  Opens URL, reads the text of the element SELECTOR, runs COMMAND... three times, then waits up to TIMEOUT
  seconds for the page's own script to change that text (to at least three more, when it is a number). Prints one JSON object: before, after, and
  whether the page was loaded again (rather than patched in place). Exit 0 when the text changed, 1 when
  it did not, 2 on a DevTools failure.
usage: live_page.py CHROMIUM URL --text [--no-javascript] [--dark] [--width PIXELS]
  Opens URL (with script execution disabled; in a dark color scheme; in a viewport that wide) and prints
  what a reader sees: the body's rendered text, a line "----", the DOM as HTML, a line "----", and a JSON
  object with the body's computed background colour, the page's scroll width and the viewport's width.
  Exit 0, or 2 on a DevTools failure."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

chromium, url = sys.argv[1], sys.argv[2]
text_only = sys.argv[3] == "--text"
no_javascript = text_only and "--no-javascript" in sys.argv[4:]
dark = text_only and "--dark" in sys.argv[4:]
width = int(sys.argv[sys.argv.index("--width") + 1]) if text_only and "--width" in sys.argv[4:] else None
if not text_only:
    selector, timeout, command = sys.argv[3], float(sys.argv[4]), sys.argv[5:]

commands_read, commands_write = os.pipe()    # Chromium reads commands on its fd 3
replies_read, replies_write = os.pipe()      # and writes replies and events on its fd 4
profile = tempfile.mkdtemp(prefix="tailgate-chromium-")


def child_fds():
    a, b = os.dup(commands_read), os.dup(replies_write)
    os.dup2(a, 3)
    os.dup2(b, 4)


browser = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", f"--user-data-dir={profile}",
     "--no-first-run", "--window-size=1280,900", "about:blank"],
    pass_fds=(3, 4), preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(commands_read)
os.close(replies_write)
pending = b""
next_id = 0


def call(method, params=None, session=None):
    global pending, next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    os.write(commands_write, json.dumps(message).encode() + b"\0")
    while True:
        while b"\0" not in pending:
            chunk = os.read(replies_read, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            pending += chunk
        raw, pending = pending.split(b"\0", 1)
        reply = json.loads(raw)
        if reply.get("id") == next_id:
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})


def evaluate(session, expression):
    # While the page navigates (it loads itself again when its layout changes) an evaluation can fail:
    # that reads as "no value yet".
    try:
        result = call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    except RuntimeError:
        return None
    return result.get("result", {}).get("value")


status = 2
try:
    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    if no_javascript:
        call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
    if dark:
        call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}, session)
    if width:
        call("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": True}, session)
    call("Page.navigate", {"url": url}, session)
    if text_only:
        deadline = time.time() + 20
        while time.time() < deadline and evaluate(session, "document.readyState") != "complete":
            time.sleep(0.1)
        print(evaluate(session, "document.body.innerText"))
        print("----")
        print(evaluate(session, "document.documentElement.outerHTML"))
        print("----")
        print(json.dumps(evaluate(session, "({background: getComputedStyle(document.body).backgroundColor, "
                                           "scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth})")))
        sys.exit(0)
    text = f"(document.querySelector({json.dumps(selector)})||{{}}).textContent"
    deadline = time.time() + 20
    while time.time() < deadline and not (evaluate(session, "document.readyState") == "complete" and evaluate(session, text)):
        time.sleep(0.1)
    before = evaluate(session, text)
    evaluate(session, "window.tailgateMark = 1")
    for _ in range(3):
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    # The page's refresh runs on its own timer, also while the commands run: wait for a count that has
    # seen all three (before + 3, when the text is a number), not merely for the first change.
    def done(value):
        if value is None:
            return False
        if before is not None and before.isdigit() and value.isdigit():
            return int(value) >= int(before) + 3
        return value != before
    after = before
    deadline = time.time() + timeout
    while time.time() < deadline and not done(after):
        time.sleep(0.25)
        after = evaluate(session, text) or after
    reloaded = evaluate(session, "window.tailgateMark") != 1
    print(json.dumps({"before": before, "after": after, "reloaded": reloaded}))
    status = 0 if after != before and after is not None else 1
except Exception as error:  # reported to the test, which shows it
    print(json.dumps({"error": str(error)}))
finally:
    try:
        call("Browser.close")
    except Exception:
        pass
    try:
        browser.wait(timeout=10)
    except subprocess.TimeoutExpired:
        browser.kill()
        browser.wait()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(status)
