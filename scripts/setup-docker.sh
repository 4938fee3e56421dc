#!/usr/bin/env bash
# Makes sure a Docker engine answers and the local test image exists.
# Installs docker.io and busybox-static from Debian where missing (needs root),
# starts dockerd when no engine answers, and builds shoal-test/busybox:latest
# by importing a busybox rootfs (no registry is needed or reachable).
set -euo pipefail

IMAGE=${SHOAL_TEST_IMAGE:-shoal-test/busybox:latest}
log() { echo "[setup-docker] $*"; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need_pkgs+=(busybox-static)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  # Its own session: killing the job that started it (a test run, a CI step)
  # must not take the engine down with it.
  setsid dockerd >/var/log/shoal-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/shoal-dockerd.log"; tail -20 /var/log/shoal-dockerd.log; exit 1; }
fi
log "engine $(docker version --format '{{.Server.Version}}') is up"

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "building $IMAGE from busybox-static"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,www,tmp,etc,proc,sys,dev}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo '<h1>Hello from Shoal</h1>' > "$root/www/index.html"
  echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  tar -C "$root" -c . | docker import \
    --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - "$IMAGE" >/dev/null
fi
log "image $IMAGE ready"
