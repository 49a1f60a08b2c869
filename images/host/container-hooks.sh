#!/bin/bash
# container-hooks.sh: the GitHub runner's container hook (ACTIONS_RUNNER_CONTAINER_HOOKS).
# The runner runs this file as `bash -e <path>`, unprivileged, with one line of JSON on stdin
# and RUNNER_* / GITHUB_* in the environment. runner-hook, a small static client, sends a step
# straight to the job guest's relay and execs `runner-agent hook` (beside it) for every other
# call; the agent drives nspawn guests through the privileged helper /usr/local/bin/ci-nspawn-run
# (via `sudo -n`, one sudoers rule).
#
# `exec` matters: the runner signals only its direct child (SIGINT, then SIGTERM, then SIGKILL),
# so the hook must be that process to stop the step in the guest (runner-hook execs the agent in
# place, so it stays that process). The runner's worker stays our parent, which is how the agent
# knows whose job a guest belongs to (`ci-nspawn-run gc`).
exec /usr/local/lib/runner/current/bin/runner-hook
