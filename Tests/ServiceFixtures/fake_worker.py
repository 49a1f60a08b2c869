#!/usr/bin/env python3
"""A stand-in for the GitHub runner's listener and Runner.Worker, for the appliance suite.

`fake_worker.py listen QUEUE` is the listener: it runs every job directory that appears in
QUEUE (in name order; a job is QUEUE/NAME/job.json, done once QUEUE/NAME/results.json exists),
each in a fresh `fake_worker.py job DIR` process (the worker), until QUEUE/stop exists.

`fake_worker.py job DIR` is the worker. It calls the container hook exactly as Runner.Worker
does (hooks-protocol.md §1-§2): `bash -e $ACTIONS_RUNNER_CONTAINER_HOOKS`, cwd the workspace,
one line of compact JSON on stdin then EOF, a fresh empty response file
`<work>/_temp/_runner_hook_responses/<uuid>.json` per call, GITHUB_*/RUNNER_* in the
environment, itself the hook's parent for the whole job; state from each response replaces
the stored one (not cleanup_job's). A run_script_step's script is written to
`<work>/_temp/<uuid>.sh` first, as the runner does. On an interrupt it signals only the hook's
PID: SIGINT, SIGTERM after 7.5 s, SIGKILL after 2.5 s more (R-PI CancelAndKillProcessTree).

job.json: {"work": W, "workspace": WS, "env": {...}, "calls": [CALL...]} with CALL
  {"payload": {...}, "script": TEXT or null, "stepEnv": {...}, "interruptOn": TEXT or null}
  ("@SCRIPT@" in payload.args.entryPointArgs is replaced by the script's guest path
  /__w/_temp/<uuid>.sh; interruptOn: the SIGINT is sent once the hook printed TEXT).
results.json: {"calls": [{"command", "status", "stdout", "stderr", "response", "seconds"}]}
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid


def write_atomically(path, text):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.rename(temporary, path)


def call_hook(hooks, workspace, env, line, interrupt_on):
    process = subprocess.Popen(
        ["bash", "-e", hooks], cwd=workspace, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = [], []

    def pump(stream, into):
        for chunk in iter(lambda: stream.readline(), b""):
            into.append(chunk)

    readers = [threading.Thread(target=pump, args=(process.stdout, out)),
               threading.Thread(target=pump, args=(process.stderr, err))]
    for reader in readers:
        reader.start()
    process.stdin.write(line.encode())
    process.stdin.close()
    if interrupt_on is not None:
        while process.poll() is None and interrupt_on.encode() not in b"".join(out):
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(7.5)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(2.5)
                except subprocess.TimeoutExpired:
                    process.kill()
    status = process.wait()
    # As the runner: output still held open by a descendant is waited for 5 s at most.
    for reader in readers:
        reader.join(5)
    return status, b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")


def run_job(directory):
    with open(os.path.join(directory, "job.json")) as f:
        spec = json.load(f)
    hooks = os.environ["ACTIONS_RUNNER_CONTAINER_HOOKS"]
    work, workspace = spec["work"], spec["workspace"]
    for sub in ["_temp/_runner_hook_responses", "_temp/_runner_file_commands", "_temp/_github_home",
                "_temp/_github_workflow", "_actions", "_tool"]:
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    os.makedirs(workspace, exist_ok=True)
    base_env = dict(os.environ)
    base_env.update(spec.get("env", {}))
    base_env.update({"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": workspace,
                     "RUNNER_WORKSPACE": os.path.dirname(workspace), "RUNNER_TEMP": work + "/_temp"})
    state = None
    results = []
    for call in spec["calls"]:
        payload = call["payload"]
        response = "%s/_temp/_runner_hook_responses/%s.json" % (work, uuid.uuid4())
        open(response, "w").close()
        payload["responseFile"] = response
        payload["state"] = state
        if call.get("script") is not None:
            name = "%s.sh" % uuid.uuid4()
            with open(os.path.join(work, "_temp", name), "w") as f:
                f.write(call["script"])
            args = payload["args"]
            args["entryPointArgs"] = ["/__w/_temp/" + name if a == "@SCRIPT@" else a for a in args["entryPointArgs"]]
            args.setdefault("environmentVariables", {}).update(call.get("stepEnv", {}))
        line = json.dumps(payload, separators=(",", ":")) + "\n"
        started = time.monotonic()
        status, out, err = call_hook(hooks, workspace, base_env, line, call.get("interruptOn"))
        seconds = time.monotonic() - started
        with open(response) as f:
            text = f.read()
        if status == 0 and text.strip() and payload["command"] != "cleanup_job":
            answer = json.loads(text)
            if answer.get("state") is not None:
                state = answer["state"]
        results.append({"command": payload["command"], "status": status, "stdout": out, "stderr": err,
                        "response": text, "seconds": seconds})
    write_atomically(os.path.join(directory, "results.json"), json.dumps({"calls": results}))


def listen(queue):
    done = set()
    while not os.path.exists(os.path.join(queue, "stop")):
        for name in sorted(os.listdir(queue)):
            job = os.path.join(queue, name)
            if name in done or not os.path.exists(os.path.join(job, "job.json")):
                continue
            done.add(name)
            if os.path.exists(os.path.join(job, "results.json")):
                continue
            # The listener's lines around a job, as the runner prints them: the supervisor
            # reads them to know a job runs (a stop then lets it finish).
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            print("%sZ: Running job: %s" % (stamp, name), flush=True)
            subprocess.run([sys.executable, os.path.abspath(__file__), "job", job], check=False)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            print("%sZ: Job %s completed with result: Succeeded" % (stamp, name), flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(sys.argv[2])
    else:
        try:
            run_job(sys.argv[2])
        except Exception:  # noqa: BLE001 - the test reads the reason instead of waiting for nothing
            import traceback
            write_atomically(os.path.join(sys.argv[2], "results.json"), json.dumps({"error": traceback.format_exc()}))
