#!/bin/sh
# bootstrap.sh: fetch the pinned runner release and exec its installer.
# Run by runner-install.service with /etc/runner/config.env in the environment.
# Exits 0 at once when the install marker exists. Retrying is the unit's job, not ours.
set -eu

root="${RUNNER_ROOT:-}"
marker="$root/var/lib/runner/installed"
cache="$root/var/cache/runner"

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

if [ -e "$marker" ]; then
    say "$marker exists: already installed, nothing to do"
    exit 0
fi

mode="${RUNNER_BOOTSTRAP_MODE:-bundle}"
ref="${RUNNER_BOOTSTRAP_REPO_REF:-}"
[ -n "$ref" ] || die "RUNNER_BOOTSTRAP_REPO_REF is not set in /etc/runner/config.env (set it to the release tag, e.g. v1.2)"

case "$mode" in
bundle)
    sha="${RUNNER_BUNDLE_SHA256:-}"
    [ -n "$sha" ] || die "RUNNER_BUNDLE_SHA256 is not set (runner-build userdata pins it; re-render the user-data)"
    url="${RUNNER_BUNDLE_URL:-}"
    if [ -z "$url" ]; then
        repo="${RUNNER_BOOTSTRAP_REPO_URL:-}"
        [ -n "$repo" ] || die "neither RUNNER_BUNDLE_URL nor RUNNER_BOOTSTRAP_REPO_URL is set"
        arch=$(uname -m)
        case "$arch" in x86_64) arch=x86_64 ;; aarch64 | arm64) arch=aarch64 ;; esac
        url="${repo%.git}/releases/download/$ref/runner-bundle-$ref-linux-$arch.tar.gz"
    fi
    mkdir -p "$cache"
    bundle="$cache/runner-bundle-$ref.tar.gz"
    partial="$bundle.partial"
    rm -f "$partial"
    say "fetching $url"
    if ! curl --fail --silent --show-error --location --connect-timeout 20 --max-time 600 \
        --retry 0 --output "$partial" "$url"; then
        rm -f "$partial"
        die "could not download $url (the unit retries; check the URL and the network)"
    fi
    got=$(sha256sum "$partial" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        rm -f "$partial"
        die "sha256 mismatch for $url: expected $sha, got $got (download deleted; check RUNNER_BUNDLE_SHA256 and the release)"
    fi
    mv -f "$partial" "$bundle"
    work="$cache/bootstrap-$ref"
    rm -rf "$work"
    mkdir -p "$work"
    tar -xzf "$bundle" -C "$work" bin/runner-agent || die "could not take bin/runner-agent out of $bundle"
    say "bundle verified ($sha); running the installer"
    exec "$work/bin/runner-agent" install --bundle "$bundle"
    ;;
git)
    repo="${RUNNER_BOOTSTRAP_REPO_URL:-}"
    [ -n "$repo" ] || die "RUNNER_BOOTSTRAP_REPO_URL is not set (needed for RUNNER_BOOTSTRAP_MODE=git)"
    checkout="$cache/src-$ref"
    rm -rf "$checkout"
    mkdir -p "$cache"
    say "cloning $repo at $ref"
    git clone --quiet --depth 1 --branch "$ref" "$repo" "$checkout" || die "could not clone $repo at $ref"
    [ -x "$checkout/bin/runner-agent" ] || die "$repo at $ref has no bin/runner-agent"
    exec "$checkout/bin/runner-agent" install --source "$checkout"
    ;;
*)
    die "RUNNER_BOOTSTRAP_MODE=$mode is not one of: bundle, git"
    ;;
esac
