#!/usr/bin/env bash
# Build the Kubernetes control plane the tests run (tests/control_plane.py): etcd,
# kube-apiserver and kube-controller-manager, from the Go modules pinned in
# tools/k8s/go.mod (Kubernetes) and tools/k8s/etcd/go.mod (etcd), into
#   ${KYB_CACHE:-~/.cache/kyb}/control-plane-<kubernetes version>-etcd-<etcd version>/
# Once built this costs nothing (two seds and three `test -x`). A cold build downloads
# about 0.8 GB of modules, needs about 3 GB of Go build cache and 17-18 CPU-minutes
# (about 10 minutes on 2 idle cores; measured 32 minutes on 2 cores shared with other
# work, which `nice` lets go first), and prints how long each binary took.
# scripts/test.sh starts it in the background; the control_plane fixture waits for it.
# `--print-dir` prints the directory and `--check` says whether it is built; neither builds.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/tools/k8s"
pinned() {  # pinned MODULE GO.MOD: the version GO.MOD requires
    sed -n "s|^[[:space:]]*\(require \)\{0,1\}$1 \(v[0-9][0-9.]*\)\( //.*\)\{0,1\}\$|\2|p" "$2" | head -1
}
kube_version="$(pinned k8s.io/kubernetes "$tools/go.mod")"
etcd_version="$(pinned go.etcd.io/etcd/server/v3 "$tools/etcd/go.mod")"
if [ -z "$kube_version" ] || [ -z "$etcd_version" ]; then
    echo "setup-control-plane: cannot read the pinned versions from $tools/go.mod and $tools/etcd/go.mod" >&2
    exit 1
fi
dir="${KYB_CACHE:-$HOME/.cache/kyb}/control-plane-$kube_version-etcd-$etcd_version"

if [ "${1:-}" = --print-dir ]; then
    echo "$dir"
    exit 0
fi

# The test fixture makes its CA and certificates with the openssl CLI.
if ! command -v openssl >/dev/null; then
    echo "setup-control-plane: installing openssl from Debian" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi

binaries=(etcd kube-apiserver kube-controller-manager)
complete() {
    local name
    for name in "${binaries[@]}"; do [ -x "$dir/$name" ] || return 1; done
}
complete && exit 0
[ "${1:-}" = --check ] && exit 1

# tools/k8s/etcd/go.mod says go 1.26.0: an older go fetches that toolchain (GOTOOLCHAIN=auto).
command -v go >/dev/null || { echo "setup-control-plane: needs Go (1.26 or newer) on PATH" >&2; exit 1; }
mkdir -p "$dir"
# One build at a time, even when two setups run at once; the second finds it done.
exec 9>"$dir.lock"
flock 9
complete && exit 0

echo "setup-control-plane: building etcd $etcd_version and Kubernetes $kube_version into $dir" \
     "(once; about 10 minutes on 2 idle cores)" >&2
started=$SECONDS
export GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
minor="${kube_version#v1.}"; minor="${minor%%.*}"
version_flags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags+=" -X $package.gitVersion=$kube_version -X $package.gitMajor=1 -X $package.gitMinor=$minor"
    version_flags+=" -X $package.gitTreeState=clean"
done

build() {  # build NAME MODULE-DIR PACKAGE [LDFLAGS]: into $dir/NAME, timed, niced
    local name="$1" module="$2" package="$3" ldflags="-s -w ${4:-}" start
    [ -x "$dir/$name" ] && return 0
    start=$SECONDS
    (cd "$module" && nice -n 10 go build -ldflags "$ldflags" -o "$dir/$name.tmp" "$package")
    mv "$dir/$name.tmp" "$dir/$name"
    echo "setup-control-plane: built $name in $((SECONDS - start)) s" >&2
    echo "$name $((SECONDS - start))" >> "$dir/build-seconds.txt"
}
build etcd "$tools/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$tools" k8s.io/kubernetes/cmd/kube-apiserver "$version_flags"
build kube-controller-manager "$tools" k8s.io/kubernetes/cmd/kube-controller-manager "$version_flags"
echo "setup-control-plane: the control plane took $((SECONDS - started)) s to build" >&2
