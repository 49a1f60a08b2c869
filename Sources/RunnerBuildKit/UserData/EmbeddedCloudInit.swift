// Generated from cloud-init/ by
//   RUNNER_RECORD_EMBEDDED=1 swift test --filter EmbeddedCloudInitTests
// Do not edit: EmbeddedCloudInitTests fails when this differs from the files in cloud-init/.
// swift-format-ignore-file

/// The files `runner-build userdata` embeds in the user-data, shipped inside the binary so
/// that it works from any directory, without the repository.
public enum EmbeddedCloudInit {
    /// `cloud-init/runner-install.service`.
    public static let runnerInstallService = #"""
# runner-install.service: first-boot installer of the runner appliance.
# Runs bootstrap.sh until it succeeds: it exits at once when /var/lib/runner/installed exists,
# otherwise fetches the pinned release and execs `runner-agent install`. Retrying is this
# unit's job (Restart=on-failure, no start limit), not a shell loop's; a configuration error
# (exit 78) is not retried.
# Re-install without reflashing: rm /var/lib/runner/installed && systemctl restart runner-install
[Unit]
Description=Install the runner appliance from its pinned release
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=oneshot
EnvironmentFile=/etc/runner/config.env
ExecStart=/usr/local/lib/runner/bootstrap.sh
Restart=on-failure
RestartSec=30
# Exit 78 (EX_CONFIG) is a configuration error (bootstrap.sh's, or the installer's, which
# bootstrap.sh execs): the same config.env fails the same way every 30 s, so stop and stay
# failed (the journal and `runner-agent doctor` say why). Network and server failures exit
# otherwise and are retried.
RestartPreventExitStatus=78
TimeoutStartSec=30min

[Install]
WantedBy=multi-user.target

"""#

    /// `cloud-init/bootstrap.sh`.
    public static let bootstrapScript = #"""
#!/bin/sh
# bootstrap.sh: fetch the pinned runner release and exec its installer.
#
# Run by runner-install.service, which loads /etc/runner/config.env into the environment
# (EnvironmentFile=). Exits 0 at once when the install marker exists. Otherwise, in bundle
# mode (the default), downloads the bundle of RUNNER_BOOTSTRAP_REPO_REF (RUNNER_BUNDLE_URL, or
# the release asset under RUNNER_BOOTSTRAP_REPO_URL), checks it against RUNNER_BUNDLE_SHA256,
# takes bin/runner-agent out of it and execs `runner-agent install --bundle FILE`. In git mode,
# clones RUNNER_BOOTSTRAP_REPO_URL at the ref and execs the checkout's bin/runner-agent install --source
# from inside the checkout.
#
# It tries once. Retrying is the unit's job (Restart=on-failure), not a shell loop's: every
# failure exits non-zero with one line saying what failed, and leaves nothing half-downloaded.
# A configuration error (a setting missing or malformed: trying again cannot help) exits 78
# (EX_CONFIG), which the unit does not retry (RestartPreventExitStatus=78); anything that may
# pass on a later try (network, server, download) exits 1. The installer is exec'd, so its own
# exit status (78 for its configuration errors) is the unit's.
# RUNNER_ROOT (default: empty, i.e. /) prefixes every path, so tests can use a throwaway root.
set -eu

root="${RUNNER_ROOT:-}"
marker="$root/var/lib/runner/installed"
cache="$root/var/cache/runner"

say() { printf 'bootstrap: %s\n' "$*"; }
die() {
    printf 'bootstrap: error: %s\n' "$*" >&2
    exit 1
}
# A configuration error: fix /etc/runner/config.env (or the user-data), then restart the unit.
die_config() {
    printf 'bootstrap: error: %s (a configuration error: not retried; fix /etc/runner/config.env, then systemctl restart runner-install.service)\n' "$*" >&2
    exit 78
}
# URLs as logged: credentials (user:pass@) hidden.
shown() { printf '%s' "$1" | sed 's#://[^/@]*@#://<redacted>@#'; }

if [ -e "$marker" ]; then
    say "$marker exists: already installed, nothing to do (delete it and restart the unit to reinstall)"
    exit 0
fi

mode="${RUNNER_BOOTSTRAP_MODE:-bundle}"
ref="${RUNNER_BOOTSTRAP_REPO_REF:-}"
[ -n "$ref" ] || die_config "RUNNER_BOOTSTRAP_REPO_REF is not set in /etc/runner/config.env (runner-build userdata --ref pins it)"
case "$ref" in
-* | *..* | *[!A-Za-z0-9._/+-]*) die_config "RUNNER_BOOTSTRAP_REPO_REF=$ref is not a tag or branch name" ;;
esac

# curl reads only the lowercase http_proxy (for safety); config.env uses the uppercase names.
if [ -n "${HTTP_PROXY:-}" ] && [ -z "${http_proxy:-}" ]; then http_proxy=$HTTP_PROXY && export http_proxy; fi
if [ -n "${HTTPS_PROXY:-}" ] && [ -z "${https_proxy:-}" ]; then https_proxy=$HTTPS_PROXY && export https_proxy; fi
if [ -n "${NO_PROXY:-}" ] && [ -z "${no_proxy:-}" ]; then no_proxy=$NO_PROXY && export no_proxy; fi

mkdir -p "$cache"
chmod 0700 "$cache"
# Everything of this attempt lives here until it is complete; a failure removes it.
work=$(mktemp -d "$cache/bootstrap.XXXXXX")
trap 'rm -rf "$work"' EXIT

case "$mode" in
bundle)
    sha="${RUNNER_BUNDLE_SHA256:-}"
    [ -n "$sha" ] || die_config "RUNNER_BUNDLE_SHA256 is not set (runner-build userdata pins it; re-render the user-data)"
    sha=$(printf '%s' "$sha" | tr 'A-F' 'a-f')
    case "$sha" in
    *[!0-9a-f]*) die_config "RUNNER_BUNDLE_SHA256 is not 64 hex digits" ;;
    esac
    [ ${#sha} -eq 64 ] || die_config "RUNNER_BUNDLE_SHA256 is not 64 hex digits"
    url="${RUNNER_BUNDLE_URL:-}"
    if [ -z "$url" ]; then
        repo="${RUNNER_BOOTSTRAP_REPO_URL:-}"
        [ -n "$repo" ] || die_config "neither RUNNER_BUNDLE_URL nor RUNNER_BOOTSTRAP_REPO_URL is set in /etc/runner/config.env"
        arch=$(uname -m)
        case "$arch" in arm64) arch=aarch64 ;; esac
        repo=${repo%/}
        url="${repo%.git}/releases/download/$ref/runner-bundle-$ref-linux-$arch.tar.gz"
    fi
    download="$work/bundle.tar.gz"
    say "fetching $(shown "$url")"
    # One attempt with bounded waits: 20 s to connect, 30 s of < 1 KB/s, 15 min in all.
    if ! curl --fail --silent --show-error --location --proto '=https,http' \
        --connect-timeout 20 --speed-limit 1024 --speed-time 30 --max-time 900 \
        --output "$download" "$url"; then
        die "could not download $(shown "$url") (the unit retries in 30 s; check the URL, the network and the proxy)"
    fi
    got=$(sha256sum "$download" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        rm -f "$download"
        die "sha256 mismatch for $(shown "$url"): expected $sha, got $got; the download is deleted (check RUNNER_BUNDLE_SHA256 against the release's SHA256SUMS)"
    fi
    mkdir "$work/x"
    if ! tar -xf "$download" -C "$work/x" --no-same-owner bin/runner-agent 2>/dev/null &&
        ! tar -xf "$download" -C "$work/x" --no-same-owner ./bin/runner-agent 2>/dev/null; then
        die "the bundle $(shown "$url") has no bin/runner-agent (is it a runner bundle?)"
    fi
    if [ -L "$work/x/bin/runner-agent" ] || [ ! -f "$work/x/bin/runner-agent" ]; then
        die "the bundle's bin/runner-agent is not a regular file"
    fi
    chmod 0755 "$work/x/bin/runner-agent"
    # Keep the verified bundle and its agent; drop older attempts.
    bundle="$cache/runner-bundle-$ref.tar.gz"
    agent="$cache/runner-agent-$ref"
    mv -f "$download" "$bundle"
    mv -f "$work/x/bin/runner-agent" "$agent"
    say "bundle verified (sha256 $sha); running $agent install --bundle $bundle"
    rm -rf "$work"
    trap - EXIT
    exec "$agent" install --bundle "$bundle"
    ;;
git)
    repo="${RUNNER_BOOTSTRAP_REPO_URL:-}"
    [ -n "$repo" ] || die_config "RUNNER_BOOTSTRAP_REPO_URL is not set (RUNNER_BOOTSTRAP_MODE=git clones it)"
    say "cloning $(shown "$repo") at $ref"
    if ! GIT_TERMINAL_PROMPT=0 timeout 900 git clone --quiet --depth 1 --branch "$ref" -- "$repo" "$work/src"; then
        die "could not clone $(shown "$repo") at $ref (the unit retries in 30 s; check the URL, the ref and the network)"
    fi
    [ -x "$work/src/bin/runner-agent" ] || die "$(shown "$repo") at $ref has no executable bin/runner-agent"
    checkout="$cache/src-$ref"
    rm -rf "$checkout"
    mkdir -p "$(dirname "$checkout")"
    mv "$work/src" "$checkout"
    say "checked out $(git -C "$checkout" rev-parse HEAD); running $checkout/bin/runner-agent install --source $checkout"
    rm -rf "$work"
    trap - EXIT
    cd "$checkout"
    exec "$checkout/bin/runner-agent" install --source "$checkout"
    ;;
*)
    die_config "RUNNER_BOOTSTRAP_MODE=$mode is not one of: bundle, git"
    ;;
esac

"""#

    /// The property name and file name of each embedded file.
    static let files = [("runnerInstallService", "runner-install.service"), ("bootstrapScript", "bootstrap.sh")]
}
