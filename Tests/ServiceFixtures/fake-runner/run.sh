#!/bin/bash
# Fake GitHub runner run.sh for runner-agent's tests. Records argv and environment, takes a
# JIT configuration from ACTIONS_RUNNER_INPUT_JITCONFIG (writing its files like the listener),
# asks the fake API whether its registration still exists (printing the listener's
# "registration has been deleted" line when not), then follows one line of .fake/script:
# "CODE JOB_SECONDS MODE" (MODE: run | hold = listen until SIGINT | ignore-int). It appends a
# line to .fake/ready once it holds (or once its job started), for tests that signal it. An
# executable .fake/job runs once, as the job's code would. Signals it gets are logged to
# .fake/signals, with the time (ns since the epoch) of each SIGINT in .fake/sigint-at; a SIGINT
# cancels a running job (as the listener does), a SIGTERM ends it at once (exit 143). An
# executable .fake/listener runs instead of the script's job on every launch (see below).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
fake="$dir/.fake"
api=$(cat "$fake/api")
stamp=$(date +%s%N)
{ printf 'run.sh'; for arg in "$@"; do printf ' %s' "$arg"; done; printf '\n'; } >> "$fake/calls"
env | sort > "$fake/env.run.$stamp"
id -u > "$fake/uid.run"
interrupted=false
trap 'echo "SIGINT $stamp" >> "$fake/signals"; date +%s%N >> "$fake/sigint-at"; interrupted=true' INT
trap 'echo "SIGTERM $stamp" >> "$fake/signals"; exit 143' TERM

if [ -n "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" ]; then
    printf '%s' "$ACTIONS_RUNNER_INPUT_JITCONFIG" | python3 -c '
import base64, json, os, sys
files = json.loads(base64.b64decode(sys.stdin.read()))
for name, content in files.items():
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(base64.b64decode(content))
' "$dir" || { echo "fake run.sh: bad JIT configuration"; exit 1; }
    jitname=$(sed -n 's/.*"agentName": "\([^"]*\)".*/\1/p' "$dir/.runner")
    curl -s -o /dev/null --config - --url "$api/_fake/register-jit" <<CFG
request = "POST"
data-binary = "{\"name\": \"$jitname\"}"
CFG
fi
if [ ! -e "$dir/.runner" ]; then
    echo "Not configured. Run config.(sh/cmd) to configure the runner."
    exit 1
fi
name=$(sed -n 's/.*"agentName": "\([^"]*\)".*/\1/p' "$dir/.runner")
status=$(curl -s -o /dev/null -w '%{http_code}' --url "$api/_fake/session?name=$name")
if [ "$status" = 410 ]; then
    echo "Failed to create a session. The runner registration has been deleted from the server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently."
    exit 1
fi
line=$(head -n 1 "$fake/script" 2>/dev/null || true)
sed -i 1d "$fake/script" 2>/dev/null || true
read -r code job mode <<< "${line:-0 0 run}"
code=${code:-0} job=${job:-0} mode=${mode:-run}
if [ "$mode" = ignore-int ]; then
    trap 'echo "SIGINT (ignored) $stamp" >> "$fake/signals"' INT
fi
echo "√ Connected to GitHub"
echo "Listening for Jobs"
# An executable .fake/listener takes jobs on every launch (the appliance suite's fake worker):
# run.sh waits for it, and a SIGINT or SIGTERM ends it, as the listener ends when stopped.
if [ -x "$fake/listener" ]; then
    "$fake/listener" &
    listener=$!
    trap 'echo "SIGTERM $stamp" >> "$fake/signals"; kill "$listener" 2>/dev/null; exit 143' TERM
    while kill -0 "$listener" 2>/dev/null && [ "$interrupted" = false ]; do wait "$listener"; done
    kill "$listener" 2>/dev/null
    echo "Exiting..."
    exit 0
fi
# A job's own code: .fake/job (made by a test) runs once, as the runner user.
if [ -x "$fake/job" ] && mv "$fake/job" "$fake/job.ran"; then
    "$fake/job.ran"
fi
sleep "$(cat "$fake/sleep" 2>/dev/null || echo 0.3)"
if [ "$job" != 0 ]; then
    echo "$(date -u '+%F %T')Z: Running job: build"
    echo "ready $stamp" >> "$fake/ready"
    end=$(( $(date +%s) + job ))
    while [ "$(date +%s)" -lt "$end" ] && [ "$interrupted" = false ]; do sleep 0.1; done
    result=Succeeded
    [ "$interrupted" = false ] || result=Canceled
    echo "$(date -u '+%F %T')Z: Job build completed with result: $result"
fi
if [ "$mode" = hold ] || [ "$mode" = ignore-int ]; then
    [ "$job" != 0 ] || echo "ready $stamp" >> "$fake/ready"
    while [ "$interrupted" = false ] || [ "$mode" = ignore-int ]; do sleep 0.1; done
    echo "Exiting..."
    exit 0
fi
if [ "$code" = 0 ] && grep -q '"ephemeral": true' "$dir/.runner"; then
    rm -f "$dir/.runner" "$dir/.credentials" "$dir/.credentials_rsaparams"
fi
exit "$code"
