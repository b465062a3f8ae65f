#!/bin/sh
# mkbase.sh [TAG] - make a Debian bookworm base image with debootstrap, for
# machines where no registry can be reached (so debian:bookworm-slim can be
# neither found nor pulled) but a Debian package mirror can.
#
#   sh docker/mkbase.sh                      # makes ringlb/debian:bookworm
#   RINGLB_DEBIAN_MIRROR=http://mirror.example/debian sh docker/mkbase.sh
#
# The image is tagged ringlb/debian:bookworm, not debian:bookworm-slim: it
# is made here, not Debian's image, and should not pass for it (nor be
# replaced by it without notice when a registry becomes reachable).  The
# Makefile's `make build` passes it to the Dockerfile as BASE_IMAGE and
# RUNTIME_IMAGE.  Nothing is done if the image already exists.
#
# Needs root, debootstrap and a reachable Debian mirror: the first one of
# the machine's apt sources that serves bookworm, else deb.debian.org
# (RINGLB_DEBIAN_MIRROR and RINGLB_DEBIAN_SECURITY_MIRROR override them).
set -eu

TAG=${1:-ringlb/debian:bookworm}
SUITE=bookworm

say() { printf 'mkbase: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v docker >/dev/null 2>&1 ||
	die "docker is not installed (apt-get install docker.io)"
if docker image inspect "$TAG" >/dev/null 2>&1; then
	say "$TAG already exists; nothing to do"
	exit 0
fi

say "no registry reachable: building the Debian base image $TAG with debootstrap"
[ "$(id -u)" = 0 ] ||
	die "debootstrap needs root: run this as root (e.g. sudo make build)"
command -v debootstrap >/dev/null 2>&1 ||
	die "debootstrap is not installed: apt-get install debootstrap"

# The first URI of the machine's apt sources that serves SUITE (for the
# main archive) or SUITE-security, from one-line (.list) and deb822
# (.sources) files alike.
apt_uri() {
	want=$1
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v s="$want" '{
			line = $0; gsub(/\[[^]]*\]/, " ", line)
			if (split(line, w) >= 3 && w[1] == "deb" && w[3] == s)
				{ print w[2]; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v s="$want" '
			function flush() {
				if (deb && uri != "" && (" " suites " ") ~ (" " s " "))
					{ print uri; found = 1 }
				deb = 0; uri = ""; suites = ""
			}
			/^[ \t]*$/ { flush(); if (found) exit; next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { $1 = ""; suites = $0 }
			END { if (!found) flush() }
		' "$f"
	done
}
MIRROR=${RINGLB_DEBIAN_MIRROR:-$(apt_uri "$SUITE" | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${RINGLB_DEBIAN_SECURITY_MIRROR:-$(apt_uri "$SUITE-security" | head -n 1)}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
say "mirror $MIRROR, security updates from $SECURITY"

ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/ringlb-debootstrap.XXXXXX")
LOG=$ROOT.log
cleanup() {
	# debootstrap mounts proc and sys inside the tree; never delete
	# through a mount left behind by an interrupted run.
	awk -v r="$ROOT" 'index($2, r "/") == 1 { print $2 }' /proc/mounts |
		sort -r | while read -r m; do umount -l "$m" || true; done
	rm -rf --one-file-system "$ROOT"
	rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say "debootstrap --variant=minbase $SUITE (a minute or so)"
if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$LOG" 2>&1; then
	tail -n 20 "$LOG" >&2
	die "debootstrap failed (is $MIRROR reachable? set RINGLB_DEBIAN_MIRROR)"
fi
rm -f "$LOG"

say "configuring apt and dpkg as in Debian's own images"
# What Debian's own container images do: apt sources with updates and
# security, no documentation or translations installed from now on, no
# services started by package installs, no apt caches kept.
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker-excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$ROOT/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
cat >"$ROOT/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF

say "installing the updates and security fixes released since bookworm"
mount -t proc proc "$ROOT/proc"
if ! chroot "$ROOT" sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive \
	apt-get -y --no-install-recommends upgrade' >"$LOG" 2>&1; then
	tail -n 20 "$LOG" >&2
	die "apt-get upgrade in the new tree failed"
fi
umount "$ROOT/proc"
rm -f "$LOG"

say "slimming the tree"
# What was installed before the excludes existed.
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d \
	-delete 2>/dev/null || true
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOT/usr/share/man/"* "$ROOT/usr/share/info/"* \
	"$ROOT/usr/share/lintian/"* "$ROOT/var/lib/apt/lists/"* \
	"$ROOT/var/cache/apt/"*.bin "$ROOT/var/cache/apt/archives/"*.deb \
	"$ROOT/var/cache/debconf/"*-old "$ROOT/var/log/"*.log \
	"$ROOT/var/log/apt/"* "$ROOT/tmp/"* "$ROOT/root/".bash_history
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 \
	-not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
# Docker provides these in every container.
rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname" "$ROOT/etc/hosts"
[ -f "$ROOT/etc/machine-id" ] && : >"$ROOT/etc/machine-id"

say "importing the tree as $TAG"
tar --numeric-owner -C "$ROOT" -c . |
	docker import \
		--change 'CMD ["bash"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change "LABEL ringlb.base=debootstrap ringlb.base.suite=$SUITE ringlb.base.mirror=$MIRROR" \
		--message "debootstrap --variant=minbase $SUITE $MIRROR" \
		- "$TAG" >/dev/null
say "made $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
