#!/usr/bin/env python3
"""Independent check of docs/envelope.md, using only the `cryptography` package.

Implements, from the spec alone:
  - the at-rest blob (RKE1 || version || nonce || ct || tag, AAD = header || location);
  - HPKE base mode (RFC 9180) for DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM,
    on cryptography's ECDH, HMAC, HKDFExpand and AESGCM.

Usage: open_envelope.py INPUT.json
INPUT holds hex fields: data_key, location (text), at_rest_blob, hpke_sk, enc, ciphertext,
message_type (text), message_id (text), and optionally rfc_vector (a CFRG test vector).
Prints JSON {"at_rest_plaintext": hex, "hpke_plaintext": hex, "rfc_vector_ok": bool|null}.
"""
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

KEM_ID, KDF_ID, AEAD_ID = 0x0010, 0x0001, 0x0002
N_SECRET, N_K, N_N, N_H = 32, 32, 12, 32


def i2osp(n, w):
    return n.to_bytes(w, "big")


def hkdf_extract(salt, ikm):
    h = hmac.HMAC(salt if salt else b"\x00" * N_H, hashes.SHA256())
    h.update(ikm)
    return h.finalize()


def hkdf_expand(prk, info, length):
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def labeled_extract(suite_id, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id, prk, label, info, length):
    return hkdf_expand(prk, i2osp(length, 2) + b"HPKE-v1" + suite_id + label + info, length)


def decap(enc, sk_r_bytes):
    kem_suite = b"KEM" + i2osp(KEM_ID, 2)
    sk = ec.derive_private_key(int.from_bytes(sk_r_bytes, "big"), ec.SECP256R1())
    pk_e = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc)
    dh = sk.exchange(ec.ECDH(), pk_e)
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    pk_rm = sk.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    kem_context = enc + pk_rm
    eae_prk = labeled_extract(kem_suite, b"", b"eae_prk", dh)
    return labeled_expand(kem_suite, eae_prk, b"shared_secret", kem_context, N_SECRET)


def key_schedule(shared_secret, info, kem_id=KEM_ID, kdf_id=KDF_ID, aead_id=AEAD_ID, nk=N_K):
    suite = b"HPKE" + i2osp(kem_id, 2) + i2osp(kdf_id, 2) + i2osp(aead_id, 2)
    mode = b"\x00"  # base
    psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite, b"", b"info_hash", info)
    ctx = mode + psk_id_hash + info_hash
    secret = labeled_extract(suite, shared_secret, b"secret", b"")
    key = labeled_expand(suite, secret, b"key", ctx, nk)
    base_nonce = labeled_expand(suite, secret, b"base_nonce", ctx, N_N)
    return key, base_nonce


def hpke_open(sk_r, enc, info, aad, ct):
    ss = decap(enc, sk_r)
    key, nonce = key_schedule(ss, info)
    return AESGCM(key).decrypt(nonce, ct, aad)  # sequence number 0: nonce = base_nonce


def at_rest_decrypt(data_key, location, blob):
    if len(blob) < 8 + 12 + 16 or blob[:4] != b"RKE1":
        raise ValueError("not an RKE1 blob")
    (version,) = struct.unpack(">I", blob[4:8])
    header, nonce, ct = blob[:8], blob[8:20], blob[20:]
    return version, AESGCM(data_key).decrypt(nonce, ct, header + location.encode("utf-8"))


def check_rfc_vector(v):
    h = bytes.fromhex
    ss = decap(h(v["enc"]), h(v["skRm"]))
    if ss != h(v["shared_secret"]):
        return False
    key, nonce = key_schedule(ss, h(v["info"]), v["kem_id"], v["kdf_id"], v["aead_id"], len(h(v["key"])))
    if key != h(v["key"]) or nonce != h(v["base_nonce"]):
        return False
    e = v["encryptions"][0]
    return AESGCM(key).encrypt(nonce, h(e["pt"]), h(e["aad"])) == h(e["ct"])


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        inp = json.load(f)
    h = bytes.fromhex
    version, at_rest_pt = at_rest_decrypt(h(inp["data_key"]), inp["location"], h(inp["at_rest_blob"]))
    info = b"renkei/v1/" + inp["message_type"].encode("ascii")
    aad = inp["message_id"].encode("utf-8")
    hpke_pt = hpke_open(h(inp["hpke_sk"]), h(inp["enc"]), info, aad, h(inp["ciphertext"]))
    rfc_ok = check_rfc_vector(inp["rfc_vector"]) if "rfc_vector" in inp else None
    json.dump(
        {
            "at_rest_version": version,
            "at_rest_plaintext": at_rest_pt.hex(),
            "hpke_plaintext": hpke_pt.hex(),
            "rfc_vector_ok": rfc_ok,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
