#!/usr/bin/env bash
# Verifies a renkei-records log bundle with sha256sum, openssl and bash alone, following the
# manual steps of docs/records.md. Usage: manual_verify.sh BUNDLE_DIR KEYS.pem
# KEYS.pem is one PEM public key (used for every key version) or the city's key file from
# `renkei audit public-keys`: PEM blocks each after a line "# signing key version N".
# Exit 0 and "bundle OK" when every step passes; non-zero with the failing step otherwise.
set -euo pipefail
dir=$1
key=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in openssl sha256sum base64 od sed tr grep; do
  command -v "$tool" >/dev/null || fail "missing tool: $tool"
done

# Step 1: checkpoint signatures. Each line of checkpoints.jsonl is either a C2SP signed note
# ({"signed_note":"..."}, bundles from renkei-records-bundle/v2 on) or a legacy line (older
# checkpoints). Rebuild the signed text and the DER signature, pick the key of the
# checkpoint's version, check the key ID (signed notes), check the signature with openssl,
# and remember the checkpoint's chain head (hex) by tree size.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A head
pick_key() { # $1 = key version, $2 = checkpoint line number
  if grep -q '^# signing key version ' "$key"; then
    tr -d '\r' < "$key" | sed -n "/^# signing key version $1\$/,/^-----END PUBLIC KEY-----/p" > "$work/key.pem"
    grep -q -- '-----BEGIN PUBLIC KEY-----' "$work/key.pem" || fail "checkpoint line $2: no key for signing key version $1"
  else
    cp "$key" "$work/key.pem"
  fi
}
ncp=$(wc -l < "$dir/checkpoints.jsonl")
for c in $(seq 1 "$ncp"); do
  line=$(sed -n "${c}p" "$dir/checkpoints.jsonl")
  if [[ $line == '{"signed_note":"'* ]]; then
    # The note is a JSON string whose only escape is \n: undo it, then split the note at its
    # blank line into the signed text (note.txt) and the signature lines.
    printf '%s\n' "$line" | sed -E 's/^\{"signed_note":"(.*)"\}$/\1/; s/\\n/\n/g' > "$work/signed.txt"
    sed -n '/^$/q;p' "$work/signed.txt" > "$work/note.txt"
    origin=$(sed -n 1p "$work/note.txt")
    v=$(sed -n 's/^key-version //p' "$work/note.txt")
    [ -n "$origin" ] && [ -n "$v" ] || fail "checkpoint line $c: unreadable note"
    # Our signature line is the one whose key name is the origin (others, e.g. witness
    # cosignatures, are ignored): "— <origin> base64(4-byte key ID || DER signature)".
    sig=$(sed '1,/^$/d' "$work/signed.txt" | while IFS=' ' read -r _dash name s; do
      if [ "$name" = "$origin" ]; then echo "$s"; fi; done)
    sig=${sig%%$'\n'*}
    [ -n "$sig" ] || fail "checkpoint line $c: no signature by $origin"
    printf '%s' "$sig" | base64 -d > "$work/sig.bin"
    tail -c +5 "$work/sig.bin" > "$work/sig.der"
    pick_key "$v" "$c"
    # C2SP signed-note type 0x02: key ID = first 4 bytes of SHA-256(DER public key).
    want=$(openssl pkey -pubin -in "$work/key.pem" -outform DER | sha256sum | cut -c1-8)
    got=$(head -c 4 "$work/sig.bin" | od -An -v -tx1 | tr -d ' \n')
    [ "$got" = "$want" ] || fail "checkpoint line $c: signature (key ID $got is not that of key version $v)"
    chain_b64=$(sed -n 's/^chain-head //p' "$work/note.txt")
  else
    printf '%s\n' "$line" | sed -E 's/^\{"tree_size":([0-9]+),"root":"([^"]+)","chain_head":"([^"]+)","created_at":"([^"]+)","key_version":([0-9]+),.*/renkei-records\/v1\n\1\n\2\n\3\n\4\n\5/' > "$work/note.txt"
    printf '%s\n' "$line" | sed -E 's/.*"signature":"([^"]+)".*/\1/' | base64 -d > "$work/sig.der"
    [ "$(sed -n 1p "$work/note.txt")" = "renkei-records/v1" ] || fail "checkpoint line $c: unreadable"
    v=$(sed -n 6p "$work/note.txt")
    pick_key "$v" "$c"
    chain_b64=$(sed -n 4p "$work/note.txt")
  fi
  openssl dgst -sha256 -verify "$work/key.pem" -signature "$work/sig.der" "$work/note.txt" | grep -q '^Verified OK$' \
    || fail "checkpoint line $c: signature (key version $v)"
  n=$(sed -n 2p "$work/note.txt")
  head[$n]=$(printf '%s' "$chain_b64" | base64 -d | od -An -v -tx1 | tr -d ' \n')
done
[ "${#head[@]}" -gt 0 ] || fail "no checkpoint"

first=$(sed -n 's/.*"first_seq": *\([0-9]*\).*/\1/p' "$dir/bundle.json")
end=$(sed -n 's/.*"end_seq": *\([0-9]*\).*/\1/p' "$dir/bundle.json")
prev=$(sed -n 's/.*"anchor": *"\([0-9a-f]*\)".*/\1/p' "$dir/bundle.json")
[ "$first" = 0 ] && [ "$prev" != "$(printf '0%.0s' $(seq 64))" ] && fail "bundle from seq 0 needs a zero anchor"

lines=$(wc -l < "$dir/entries.jsonl")
[ "$lines" = "$(wc -l < "$dir/records.jsonl")" ] || fail "records.jsonl and entries.jsonl differ in length"
expected=$first
covered=none
for k in $(seq 1 "$lines"); do
  ent=$(sed -n "${k}p" "$dir/entries.jsonl")
  [[ $ent =~ ^\{\"seq\":([0-9]+),\"leaf\":\"([0-9a-f]{64})\",\"chain\":\"([0-9a-f]{64})\"\}$ ]] || fail "entries line $k unreadable"
  seq=${BASH_REMATCH[1]} leaf=${BASH_REMATCH[2]} chain=${BASH_REMATCH[3]}
  [ "$seq" = "$expected" ] || fail "line $k: seq $seq, expected $expected"
  rec=$(sed -n "${k}p" "$dir/records.jsonl")
  if [[ $rec =~ ^\{\"(swept|withheld)\":\"([0-9a-f]{64})\"\}$ ]]; then
    got=${BASH_REMATCH[2]}
  else
    # Step 2: leaf hash = SHA-256(0x00 || line without its newline).
    got=$(sed -n "${k}p" "$dir/records.jsonl" | tr -d '\n' | { printf '\000'; cat; } | sha256sum | cut -d' ' -f1)
  fi
  [ "$got" = "$leaf" ] || fail "seq $seq: record does not hash to its leaf"
  # Step 3: chain = SHA-256(prev || leaf) over the raw bytes.
  next=$(printf "$(echo "$prev$leaf" | sed 's/../\\x&/g')" | sha256sum | cut -d' ' -f1)
  [ "$next" = "$chain" ] || fail "seq $seq: chain hash"
  prev=$chain
  expected=$((seq + 1))
  # Step 4: a checkpoint at this size must name this chain hash.
  if [ -n "${head[$expected]:-}" ]; then
    [ "${head[$expected]}" = "$chain" ] || fail "checkpoint $expected: chain head differs"
    unset "head[$expected]"
    covered=$expected
  fi
done
[ "$expected" = "$end" ] || fail "bundle ends at $expected, manifest says $end"
[ "${#head[@]}" = 0 ] || fail "checkpoints not reached: ${!head[*]}"
[ "$covered" = "$end" ] || fail "the last entries are not covered by a checkpoint"
echo "bundle OK: seq $first..$((end - 1))"
