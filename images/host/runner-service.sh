#!/bin/sh
# runner-service.sh: what runner.service runs. The supervisor is the agent of the active release.
# Installed as /usr/local/lib/runner/runner-service.sh. The agent reads /etc/runner/config.env
# itself and validates it; it handles SIGTERM (exec keeps it the unit's main process).
set -eu
exec /usr/local/lib/runner/current/bin/runner-agent service "$@"
