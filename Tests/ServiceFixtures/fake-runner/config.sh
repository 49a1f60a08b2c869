#!/bin/bash
# Fake GitHub runner config.sh for runner-agent's tests. Like the real one it configures
# unattended from flags and ACTIONS_RUNNER_INPUT_TOKEN, refuses when already configured, and
# supports `remove --local`. It records its argv and environment under .fake/ and registers
# with the fake GitHub API (the token goes to curl on stdin, never on argv).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
fake="$dir/.fake"
api=$(cat "$fake/api")
stamp=$(date +%s%N)
{ printf 'config.sh'; for arg in "$@"; do printf ' %s' "$arg"; done; printf '\n'; } >> "$fake/calls"
env | sort > "$fake/env.config.$stamp"
sleep "$(cat "$fake/sleep" 2>/dev/null || echo 0.3)"

if [ "${1:-}" = remove ]; then
    if [ "${2:-}" != --local ]; then
        echo "fake config.sh: remove needs --local (no removal token here)" >&2
        exit 1
    fi
    rm -f "$dir/.runner" "$dir/.credentials" "$dir/.credentials_rsaparams"
    echo "Removed .credentials"
    echo "Removed .runner"
    exit 0
fi
if [ -e "$dir/.runner" ]; then
    echo "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.sh remove' or './config.sh remove' first."
    exit 1
fi
name="" ephemeral=false unattended=false disableupdate=false
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name=$2; shift ;;
        --url|--work|--labels|--runnergroup) shift ;;
        --ephemeral) ephemeral=true ;;
        --unattended) unattended=true ;;
        --disableupdate) disableupdate=true ;;
        --replace|--no-default-labels) ;;
        *) echo "fake config.sh: unknown option $1" >&2; exit 1 ;;
    esac
    shift
done
if [ "$unattended" != true ] || [ "$disableupdate" != true ] || [ -z "$name" ]; then
    echo "fake config.sh: expected --unattended --disableupdate --name" >&2
    exit 1
fi
token=${ACTIONS_RUNNER_INPUT_TOKEN:-}
if [ -z "$token" ]; then
    echo "fake config.sh: no registration token in ACTIONS_RUNNER_INPUT_TOKEN" >&2
    exit 1
fi
status=$(printf 'header = "Authorization: Bearer %s"\nrequest = "POST"\ndata-binary = "{\\"name\\": \\"%s\\"}"\n' \
    "$token" "$name" | curl -s -o /dev/null -w '%{http_code}' --config - --url "$api/_fake/register")
if [ "$status" != 200 ]; then
    echo "Http response code: Unauthorized from 'POST $api/_fake/register' (status $status)"
    exit 1
fi
printf '{"agentName": "%s", "ephemeral": %s}\n' "$name" "$ephemeral" > "$dir/.runner"
echo '{"scheme": "OAuth"}' > "$dir/.credentials"
echo "√ Runner successfully added"
echo "√ Runner connection is good"
