#!/bin/sh
# runner-service.sh: what runner.service runs. The supervisor is the agent of the active release.
# Installed as /usr/local/lib/runner/runner-service.sh; configuration comes from
# /etc/runner/config.env (EnvironmentFile= of the unit), validated by the agent.
set -eu
exec /usr/local/lib/runner/current/bin/runner-agent service "$@"
