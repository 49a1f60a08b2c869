#!/bin/bash
# container-hooks.sh: the GitHub runner's container hook (ACTIONS_RUNNER_CONTAINER_HOOKS).
# The runner runs this file as `bash -e <path>`, unprivileged, with one line of JSON on stdin
# and RUNNER_* / GITHUB_* in the environment. The agent decodes it and drives nspawn guests
# through the privileged helper /usr/local/bin/ci-nspawn-run.
exec /usr/local/lib/runner/current/bin/runner-agent hook
