#!/usr/bin/env bash
# Build a minimal OCI image tarball from the host's static busybox, without
# docker or a registry:
#
#   scripts/build-test-image.sh OUT.tar [NAME]
#
# NAME defaults to skiff.local/busybox:latest. The image has /bin/busybox
# with a symlink for every applet (sh, httpd, wget, nslookup, nc, sleep,
# cat, ...), /etc/passwd and /etc/group with root and nobody, /tmp, no
# ENTRYPOINT and CMD ["sh"]. The output is an OCI image layout tar whose
# index.json carries io.containerd.image.name, importable with
# `ctr -n NS images import OUT.tar` and with the runtime's ImportImage.
# The result is reproducible: same busybox, same name -> same digests.
set -euo pipefail

usage() { echo "usage: $0 OUT.tar [NAME]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
out=$1
name=${2:-skiff.local/busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}

for tool in tar gzip sha256sum stat; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is required" >&2; exit 1; }
done
[[ -x $busybox ]] || { echo "$0: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
if ! file_out=$(LC_ALL=C "$busybox" true 2>&1); then
  echo "$0: $busybox does not run: $file_out" >&2; exit 1
fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  armv7l) arch=arm ;;
  *) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
layout=$work/layout
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var/www} "$layout/blobs/sha256"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet, at the path busybox itself reports.
while read -r applet; do
  [[ -z $applet || $applet == bin/busybox ]] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
# The applets the tests rely on, wherever --list-full put them.
for a in sh httpd wget nslookup nc sleep cat echo ls head tail timeout env hostname ps kill; do
  [[ -e $root/bin/$a || -e $root/usr/bin/$a || -e $root/sbin/$a || -e $root/usr/sbin/$a ]] ||
    ln -s /bin/busybox "$root/bin/$a"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
echo "skiff test image" >"$root/var/www/index.html"

# Reproducible layer: fixed order, owners and times; gzip without a name or
# time stamp.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"

# blob FILE -> prints "DIGEST SIZE" and stores FILE in the layout.
blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$layout/blobs/sha256/$digest"
  echo "$digest $size"
}

read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")

cat >"$work/config.json" <<EOF
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},"history":[{"created_by":"scripts/build-test-image.sh"}]}
EOF
read -r config_digest config_size < <(blob "$work/config.json")

cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer_digest","size":$layer_size}]}
EOF
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

tag=${name##*:}
[[ $tag == "$name" || $tag == */* ]] && tag=latest
cat >"$layout/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$manifest_size,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"$tag"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$layout" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "$out: $name sha256:$manifest_digest"
