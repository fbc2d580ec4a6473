#!/usr/bin/env bash
# Install spinecoach on Raspberry Pi OS (Bookworm or later): enable I2C at 400 kHz, create the
# spinecoach user and group, build the package into a venv, install the systemd units and a
# default configuration, add the coach users to the spinecoach group, then enable the daemon and
# the tty1 coach.
#
#   sudo systemd/install-pi.sh                 # install on this Pi; the user running sudo may
#                                              # then attach `spinecoach tui` (over SSH too)
#   sudo systemd/install-pi.sh --coach-user pi --coach-user alex
#                                              # these users may attach the coach instead
#   systemd/install-pi.sh --root DIR           # stage every file under DIR; commands that change
#                                              # the system (apt, useradd, systemctl, the build)
#                                              # are written to DIR/install-actions.log instead
#
# Every step is idempotent: running the script again changes nothing that is already right, and
# an existing /etc/spinecoach/config.toml is never overwritten.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT=""
PREFIX="/opt/spinecoach"
I2C_BAUD=400000
# Login users who attach the coach (`spinecoach tui`, locally or over SSH): the daemon's socket is
# mode 0660, group spinecoach. Default: the user who ran sudo.
COACH_USERS=()
COACH_USERS_GIVEN=0

usage() { echo "usage: $0 [--root DIR] [--prefix DIR] [--coach-user NAME]..."; }
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --coach-user)
      COACH_USERS+=("${2:?--coach-user needs a user name}"); COACH_USERS_GIVEN=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-pi.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install-pi.sh: run as root (sudo $0), or stage with --root DIR" >&2
  exit 77
fi

if [ "$COACH_USERS_GIVEN" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "${SUDO_USER}" != root ]; then
  COACH_USERS=("$SUDO_USER")
fi
for name in "${COACH_USERS[@]}"; do
  # The POSIX portable user-name set (useradd's default NAME_REGEX, less the trailing $).
  if ! [[ "$name" =~ ^[a-z_][a-z0-9_-]*$ ]] || [ "$name" = spinecoach ]; then
    echo "install-pi.sh: --coach-user $name is not a login user name (lower-case letters, digits, _ and -)" >&2
    exit 64
  fi
  if [ -z "$ROOT" ] && ! id "$name" >/dev/null 2>&1; then
    echo "install-pi.sh: no user $name on this system: create it first (sudo adduser $name) or drop --coach-user $name" >&2
    exit 67
  fi
done

ACTIONS="$ROOT/install-actions.log"
[ -n "$ROOT" ] && mkdir -p "$ROOT" && : > "$ACTIONS"

# Run a command that changes the system, or log it when staging.
act() {
  if [ -n "$ROOT" ]; then
    printf '%s\n' "$*" >> "$ACTIONS"
  else
    "$@"
  fi
}

# Append LINE to FILE unless an equivalent KEY= line exists; replace a differing value of KEY.
set_line() {
  local file="$1" key="$2" line="$3"
  mkdir -p "$(dirname "$file")"
  touch "$file"
  if grep -qE "^${key}(=|$)" "$file"; then
    if ! grep -qxF "$line" "$file"; then
      sed -i -E "s|^${key}(=.*)?$|${line}|" "$file"
    fi
  else
    printf '%s\n' "$line" >> "$file"
  fi
}

step() { echo "==> $*"; }

step "system packages"
act apt-get install -y --no-install-recommends python3-venv python3-dev build-essential i2c-tools

step "I2C at ${I2C_BAUD} Hz"
BOOT_CONFIG="$ROOT/boot/firmware/config.txt"
if [ -z "$ROOT" ] && [ ! -e /boot/firmware/config.txt ] && [ -e /boot/config.txt ]; then
  BOOT_CONFIG=/boot/config.txt  # Raspberry Pi OS before Bookworm
fi
set_line "$BOOT_CONFIG" "dtparam=i2c_arm" "dtparam=i2c_arm=on"
set_line "$BOOT_CONFIG" "dtparam=i2c_arm_baudrate" "dtparam=i2c_arm_baudrate=${I2C_BAUD}"
set_line "$ROOT/etc/modules" "i2c-dev" "i2c-dev"

step "user and group"
if [ -n "$ROOT" ] || ! getent group spinecoach >/dev/null; then
  act groupadd --system spinecoach
fi
if [ -n "$ROOT" ] || ! id spinecoach >/dev/null 2>&1; then
  act useradd --system --gid spinecoach --groups i2c,gpio,video --home-dir /var/lib/spinecoach \
    --shell /usr/sbin/nologin spinecoach
fi

step "coach users"
RELOGIN=()
for name in "${COACH_USERS[@]}"; do
  if [ -z "$ROOT" ] && id -nG "$name" | tr ' ' '\n' | grep -qx spinecoach; then
    echo "    $name is already in the spinecoach group"
    continue
  fi
  act usermod --append --groups spinecoach "$name"
  RELOGIN+=("$name")
done
if [ "${#COACH_USERS[@]}" -eq 0 ]; then
  echo "    none given: add one later with --coach-user NAME (or sudo usermod -aG spinecoach NAME)"
fi

step "source and venv in ${PREFIX}"
mkdir -p "$ROOT$PREFIX/src"
# Copy the tracked tree only (no venv, no build products).
(cd "$SRC" && git ls-files -z 2>/dev/null || find . -type f -not -path './.venv/*' -not -path './.git/*' -print0) |
  (cd "$SRC" && xargs -0 -I{} cp --parents {} "$ROOT$PREFIX/src/")
act python3 -m venv "$PREFIX/venv"
act "$PREFIX/venv/bin/pip" install --quiet "setuptools>=77" wheel "Cython>=3.0" "numpy>=2.0"
act "$PREFIX/venv/bin/pip" install --quiet --no-build-isolation "$PREFIX/src"

step "configuration"
if [ ! -e "$ROOT/etc/spinecoach/config.toml" ]; then
  install -D -m 0644 "$SRC/systemd/config.toml" "$ROOT/etc/spinecoach/config.toml"
else
  echo "    keeping the existing /etc/spinecoach/config.toml"
fi

step "systemd units"
unit_tmp="$(mktemp)"
trap 'rm -f "$unit_tmp"' EXIT
for unit in spinecoach.service spinecoach-kiosk.service; do
  sed "s#/opt/spinecoach#${PREFIX}#g" "$SRC/systemd/$unit" > "$unit_tmp"
  install -D -m 0644 "$unit_tmp" "$ROOT/etc/systemd/system/$unit"
done
act systemctl daemon-reload
act systemctl enable spinecoach.service spinecoach-kiosk.service

step "done"
echo "Reboot once so I2C comes up at ${I2C_BAUD} Hz, then run: ${PREFIX}/venv/bin/spinecoach doctor"
for name in "${RELOGIN[@]}"; do
  echo "${name} joined the spinecoach group: log out and in again (a new SSH login) before \`spinecoach tui\` can attach."
done
