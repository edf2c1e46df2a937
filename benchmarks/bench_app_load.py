"""A workshop under load: simulated students against the app on 127.0.0.1, on the micro model.

    python benchmarks/bench_app_load.py                          # 30 students, concurrency 1, all at once
    python benchmarks/bench_app_load.py --concurrency 2 --arrival-s 60 --think-s 2
    python benchmarks/bench_app_load.py --set train_steps_first=20 --set train_steps_later=5

Starts `python app.py` on 127.0.0.1 (a free port; nothing else is contacted: HF_HUB_OFFLINE=1,
the micro model ships inside litdemo), then drives it with gradio_client, one Client (= one
browser tab, one session) per student. Each student does the whole loop on a tour video:

    load sample -> click the object on frame 0 -> propagate -> click a correction on frame k and
    Correct (trains, tracks on) -> go to frame k+4 and accept the suggestion -> export

There are a few distinct student scripts (video x correction frame). Each is first run *alone*
(nobody else on the server); then all students run concurrently, and every student's export
(masks and the history's events) must equal the solo run of its script: any difference is
cross-talk between sessions. An action whose view does not show what it should (e.g. no
"1 correction(s)" after Correct) counts as an error: the app shows failures as warnings and keeps
the page, so the check is on what the page shows, not on an exception.

Bounded: at most --students clients (<= 64), every call has a timeout, and the whole run stops
after --max-seconds. Prints p50/p95 seconds per action (queue wait included: what a student
waits) and the settings used; `--timeline FILE.json` also writes when each student asked for each
action and how long it took, which shows where in the run a queue built up. Not a test: timings
belong here, not in assertions.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's litdemo (the same code the server runs)
ACTIONS = ("load", "click", "propagate", "correct", "accept", "export")
MAX_STUDENTS = 64


@dataclass(frozen=True)
class Script:
    """What one student does: which tour video, which frame they correct."""
    sample: int           # index into litdemo.app.samples.TOUR
    correct_frame: int

    @property
    def accept_frame(self) -> int:
        return self.correct_frame + 4


SCRIPTS = tuple(Script(s, k) for k in (8, 12) for s in range(3))


@dataclass
class Outcome:
    student: int
    script: Script
    seconds: dict = field(default_factory=dict)   # action -> seconds
    started: dict = field(default_factory=dict)   # action -> when it was asked for (s since the phase began)
    errors: list = field(default_factory=list)
    export: dict | None = None                    # what was exported, comparable across runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, concurrency: int, threads: int, log: Path, settings: dict) -> subprocess.Popen:
    env = dict(os.environ, **settings, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", LITDEMO_APP_DEFAULT_MODEL="micro",
               LITDEMO_APP_CONCURRENCY_LIMIT=str(concurrency), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def wait_ready(url: str, server: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with code {server.returncode} before it served a page")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the app did not answer on {url} within {timeout_s:.0f} s")


class Student:
    """One browser tab, driven through the app's API endpoints."""

    def __init__(self, url: str, student: int, script: Script, call_timeout_s: float, think_s: float,
                 phase_start: float | None = None):
        from gradio_client import Client

        from litdemo.app.handlers import VIEW_KEYS

        # ssl_verify=False: the server is plain http on 127.0.0.1, so there is nothing to verify, and verifying
        # makes gradio_client parse the CA bundle for each of its connections (a new one per call, stream and
        # downloaded picture; ~60 ms of CPU each, 2-3 s per student measured) on the server's own two cores,
        # which a room's browsers, on the students' own machines, never take from it.
        self.client = Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix=f"student{student}-"),
                             ssl_verify=False)
        self.keys = VIEW_KEYS
        self.out = Outcome(student, script)
        self.timeout, self.think = call_timeout_s, think_s
        self.phase_start = time.perf_counter() if phase_start is None else phase_start

    def call(self, action: str | None, api: str, *args) -> dict:
        tic = time.perf_counter()
        job = self.client.submit(*args, api_name=api)
        result = job.result(timeout=self.timeout)
        if action is not None:
            self.out.seconds[action] = time.perf_counter() - tic
            self.out.started[action] = tic - self.phase_start
        values = result if isinstance(result, (list, tuple)) else (result,)
        if self.think:
            time.sleep(self.think)
        return dict(zip(self.keys, values))

    def expect(self, view: dict, key: str, text: str, action: str) -> None:
        shown = view.get(key)
        if not isinstance(shown, str) or text not in shown:
            self.out.errors.append(f"{action}: expected {text!r} in {key}, got {str(shown)[:120]!r}")

    def run(self) -> Outcome:
        from litdemo.app import render
        from litdemo.app.samples import TOUR

        tour = TOUR[self.out.script.sample]
        gt = tour.render().gt[1]
        k, a = self.out.script.correct_frame, self.out.script.accept_frame
        try:
            view = self.call("load", "/load_sample", tour.name, "micro", "cpu", False, "lit-lora", 128, False)
            self.expect(view, "status", f"{tour.split}-{tour.index}, 32 frames", "load")
            view = self.call("click", "/click_at", *display_centre(gt[0], render))
            self.expect(view, "frame_info", "prompted", "click")
            view = self.call("propagate", "/propagate")
            self.expect(view, "frame_info", "Frame **31** of 31", "propagate")
            self.call(None, "/goto", k)
            view = self.call(None, "/click_at", *display_centre(gt[k], render))
            self.expect(view, "frame_info", "pending", "correction click")
            view = self.call("correct", "/correct")
            self.expect(view, "status", "1 correction(s)", "correct")
            self.call(None, "/goto", a)
            view = self.call("accept", "/accept")
            self.expect(view, "status", "1 accepted suggestion(s)", "accept")
            view = self.call("export", "/export")
            self.out.export = read_export(view.get("export_files"))
            if self.out.export is None:
                self.out.errors.append("export: no files came back")
        except Exception as err:  # noqa: BLE001 - a failed call is an error of this student, the run goes on
            self.out.errors.append(f"{type(err).__name__}: {err}")
        return self.out


def display_centre(mask: np.ndarray, render) -> tuple[float, float]:
    """The object's centre in the enlarged picture the app shows (where a student clicks)."""
    ys, xs = np.nonzero(mask)
    s = render.display_scale(*mask.shape)
    return float((xs.mean() + 0.5) * s - 0.5), float((ys.mean() + 0.5) * s - 0.5)


def read_export(files) -> dict | None:
    """Masks (decoded PNGs) and the history's events without timings: what must not depend on load."""
    if not files:
        return None
    paths = [Path(f if isinstance(f, str) else f.get("path", "")) for f in files]
    by_name = {p.name: p for p in paths}
    if "masks.zip" not in by_name or "history.json" not in by_name:
        return None
    masks = {}
    with zipfile.ZipFile(by_name["masks.zip"]) as zf:
        for name in sorted(n for n in zf.namelist() if n.endswith(".png")):
            with zf.open(name) as f:
                masks[name] = np.asarray(Image.open(f)).tobytes()
    events = json.loads(by_name["history.json"].read_text())["events"]
    kept = [{k: e.get(k) for k in ("kind", "frame_idx", "obj_id", "source", "clicks", "mask", "adapter_idx")}
            for e in events]
    return {"masks": masks, "events": kept}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def app_settings(pairs: list[str]) -> dict:
    """`FIELD=VALUE` pairs -> LITDEMO_APP_* variables, each checked by AppConfig before the server starts."""
    from dataclasses import fields

    from litdemo.app.config import ENV_PREFIX, AppConfig

    known, env = {f.name for f in fields(AppConfig)}, {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name.strip() not in known:
            raise SystemExit(f"--set takes FIELD=VALUE with an AppConfig field (got {pair!r}); "
                             f"fields: {', '.join(sorted(known))}.")
        env[ENV_PREFIX + name.strip().upper()] = value.strip()
    try:
        AppConfig.from_env(env)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"--set: {err}")
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=1, help="the app's concurrency_limit for model steps")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the server (0: cores / concurrency)")
    ap.add_argument("--arrival-s", type=float, default=0.0, help="students arrive spread over this many seconds")
    ap.add_argument("--think-s", type=float, default=0.0, help="pause after each action (a student looking)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="an AppConfig field for the server (LITDEMO_APP_FIELD), e.g. train_steps_first=20; "
                         "a time cap (train_max_seconds) makes exports timing-dependent, so cross-talk "
                         "cannot be told from it")
    ap.add_argument("--call-timeout-s", type=float, default=600.0)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="the whole concurrent phase stops after this")
    ap.add_argument("--timeline", default=None, metavar="FILE.json",
                    help="also write each student's actions (when asked for, how long) to this file: "
                         "where in the run a queue built up")
    args = ap.parse_args()
    if not 1 <= args.students <= MAX_STUDENTS:
        raise SystemExit(f"--students must be between 1 and {MAX_STUDENTS}.")
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.concurrency)
    settings = app_settings(args.set)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = Path(tempfile.mkdtemp(prefix="bench-app-")) / "server.log"
    server = start_server(port, args.concurrency, threads, log, settings)
    try:
        wait_ready(url, server)
        solo = {}
        for script in SCRIPTS:  # each script alone first: the reference a concurrent run must equal
            out = Student(url, -1, script, args.call_timeout_s, 0.0).run()
            if out.errors or out.export is None:
                raise SystemExit(f"the solo run of {script} failed: {out.errors}; server log: {log}")
            solo[script] = out
        print(f"solo runs: {len(solo)} scripts; seconds per action (alone): " + ", ".join(
            f"{a} {statistics.median([o.seconds[a] for o in solo.values()]):.2f}" for a in ACTIONS))

        outcomes: list[Outcome] = []
        tic = time.perf_counter()
        with cf.ThreadPoolExecutor(max_workers=args.students) as pool:
            def student(i: int) -> Outcome:
                time.sleep(args.arrival_s * i / max(args.students - 1, 1))
                return Student(url, i, SCRIPTS[i % len(SCRIPTS)], args.call_timeout_s, args.think_s, tic).run()

            futures = [pool.submit(student, i) for i in range(args.students)]
            try:
                for f in cf.as_completed(futures, timeout=args.max_seconds):
                    outcomes.append(f.result())
            except cf.TimeoutError:
                print(f"stopped after {args.max_seconds:.0f} s: {len(outcomes)} of {args.students} students done")
        wall = time.perf_counter() - tic
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    errors = [(o.student, e) for o in outcomes for e in o.errors]
    crosstalk = [o.student for o in outcomes if o.export is not None and o.export != solo[o.script].export]
    missing = args.students - len(outcomes)
    print(f"\n{args.students} students, concurrency_limit={args.concurrency}, torch threads={threads}, "
          f"arrivals over {args.arrival_s:g} s, think {args.think_s:g} s per action; concurrent phase {wall:.0f} s"
          + "".join(f"; {k}={v}" for k, v in settings.items()))
    print(f"{'action':>10} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'n':>4}")
    for action in ACTIONS:
        times = [o.seconds[action] for o in outcomes if action in o.seconds]
        print(f"{action:>10} {percentile(times, 50):>7.2f} {percentile(times, 95):>7.2f} "
              f"{max(times, default=float('nan')):>7.2f} {len(times):>4}")
    print(f"errors: {len(errors)}; cross-talk (export differs from the same script alone): {len(crosstalk)}; "
          f"students not finished: {missing}")
    for student, error in errors[:10]:
        print(f"  student {student}: {error}")
    if crosstalk:
        print(f"  students whose export differs: {crosstalk[:20]}")
    print(f"server log: {log}")
    if args.timeline:
        write_timeline(Path(args.timeline), outcomes)


def write_timeline(path: Path, outcomes: list[Outcome]) -> None:
    rows = [{"student": o.student, "script": [o.script.sample, o.script.correct_frame],
             "actions": {a: {"asked_s": round(o.started[a], 3), "took_s": round(o.seconds[a], 3)}
                         for a in ACTIONS if a in o.seconds},
             "errors": o.errors} for o in sorted(outcomes, key=lambda o: o.student)]
    path.write_text(json.dumps(rows, indent=1))
    print(f"timeline: {path}")


if __name__ == "__main__":
    main()
