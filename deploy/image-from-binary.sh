#!/usr/bin/env bash
# Builds a minimal container image FROM scratch out of already built kmsd and kmsctl binaries,
# the shared libraries ldd lists for them, and install(1) (the chart's init container copies the
# root key with it). No base image is pulled, so this works on a Docker engine without registry
# access; the tests use it with the debug binaries.
#
#   deploy/image-from-binary.sh TAG [BIN_DIR]     (BIN_DIR defaults to target/release)
#
# The image runs as uid/gid 10001 ("kms"), keeps its data in /var/lib/kms (owned by that user)
# and starts `kmsd`; it works with a read-only root file system when /var/lib/kms and /tmp are
# volumes.
set -euo pipefail

tag=${1:?usage: $0 TAG [BIN_DIR]}
bin_dir=${2:-target/release}
uid=10001

for tool in docker ldd install; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
for binary in kmsd kmsctl; do
    [[ -x $bin_dir/$binary ]] || { echo "$0: $bin_dir/$binary not found; build it first" >&2; exit 1; }
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
root=$context/rootfs

# Copies a file to the same path under the image root, dereferencing symlinks.
put() {
    mkdir -p "$root$(dirname "$2")"
    cp -L "$1" "$root$2"
}

# Copies a binary and every library its dynamic loader would load (absolute paths from ldd,
# including the loader itself).
put_with_libraries() {
    put "$1" "$2"
    ldd "$1" | grep -o '/[^ ]*' | sort -u | while read -r library; do
        put "$library" "$library"
    done
}

put_with_libraries "$bin_dir/kmsd" /usr/local/bin/kmsd
put_with_libraries "$bin_dir/kmsctl" /usr/local/bin/kmsctl
put_with_libraries "$(command -v install)" /usr/bin/install
strip --strip-debug "$root/usr/local/bin/kmsd" "$root/usr/local/bin/kmsctl" 2>/dev/null || true

mkdir -p "$root/etc" "$context/data" "$context/tmp"
echo "root:x:0:0:root:/:/nonexistent" >"$root/etc/passwd"
echo "kms:x:$uid:$uid:kms:/var/lib/kms:/nonexistent" >>"$root/etc/passwd"
printf 'root:x:0:\nkms:x:%s:\n' "$uid" >"$root/etc/group"
echo "hosts: files dns" >"$root/etc/nsswitch.conf"

cat >"$context/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
COPY --chown=$uid:$uid data/ /var/lib/kms/
COPY tmp/ /tmp/
USER $uid:$uid
VOLUME /var/lib/kms
EXPOSE 8300 8301 8302 8303
ENTRYPOINT ["/usr/local/bin/kmsd"]
CMD ["run", "--config", "/etc/kms/kmsd.toml"]
DOCKERFILE
chmod 1777 "$context/tmp"

docker build --quiet --tag "$tag" "$context" >/dev/null
echo "$tag"
