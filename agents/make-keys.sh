#!/usr/bin/env bash
# Creates the keys of the three example agents with `mobilityctl keys`:
#   ca/                        the local CA (thesis §3.3.5); its private key stays here
#   correspondent/keys/        Alice: bob.psk, alice.key/.crt, ca.crt
#   laptop/keys, pda/keys/     Bob:   alice.psk, device.key (shared), laptop|pda.key/.crt, ca.crt
# The Alice-Bob PSK has the same content on all three, the device secret on both of Bob's
# devices. Nothing here is committed (agents/.gitignore).
#
# Usage: agents/make-keys.sh [--force]     (--force replaces existing keys)
# Uses $MOBILITYCTL if set, else `mobilityctl` from PATH, else this checkout's .venv.
# For a real deployment, run the same commands on each machine (see each README.md) and
# give the files to the service user:  chown mobilityd:mobilityd /etc/mobilityd/keys/*
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

force=()
if [ "${1:-}" = "--force" ]; then
  force=(--force)
elif [ -e "$here/ca/ca.crt" ]; then
  echo "make-keys: keys already exist in $here (use --force to recreate them)" >&2
  exit 0
fi

if [ -n "${MOBILITYCTL:-}" ]; then
  read -ra ctl <<< "$MOBILITYCTL"
elif command -v mobilityctl >/dev/null; then
  ctl=(mobilityctl)
elif [ -x "$repo/.venv/bin/python" ]; then
  ctl=(env "PYTHONPATH=$repo" "$repo/.venv/bin/python" -m mobilityd.service.ctl)
else
  echo "make-keys: mobilityctl not found (install mobilityd or run scripts/setup.sh)" >&2
  exit 1
fi

umask 077
ca=$here/ca
mkdir -p "$ca" "$here"/correspondent/keys "$here"/laptop/keys "$here"/pda/keys

"${ctl[@]}" keys ca --key "$ca/ca.key" --cert "$ca/ca.crt" --name "mobilityd demo CA" "${force[@]}"
"${ctl[@]}" keys psk "$ca/alice-bob.psk" "${force[@]}"      # MIKEY PSK, RFC 3830 §3.1
"${ctl[@]}" keys psk "$ca/bob-devices.key" "${force[@]}"    # shared by Bob's devices

device_cert() {  # agent-folder device-name sip-uri
  "${ctl[@]}" keys device-cert --ca-key "$ca/ca.key" --ca-cert "$ca/ca.crt" \
    --uri "$3" --device "$2" --key "$here/$1/keys/$2.key" --cert "$here/$1/keys/$2.crt" \
    "${force[@]}"
}
device_cert correspondent alice  sip:alice@example.net
device_cert laptop        laptop sip:bob@example.org
device_cert pda           pda    sip:bob@example.org

for agent in correspondent laptop pda; do
  install -m 644 "$ca/ca.crt" "$here/$agent/keys/ca.crt"
done
install -m 600 "$ca/alice-bob.psk" "$here/correspondent/keys/bob.psk"
for device in laptop pda; do
  install -m 600 "$ca/alice-bob.psk" "$here/$device/keys/alice.psk"
  install -m 600 "$ca/bob-devices.key" "$here/$device/keys/device.key"
done
echo "make-keys: keys ready under $here/{correspondent,laptop,pda}/keys" >&2
