"""国密 cryptography for govctl (see docs/crypto.md).

- `primitives`: SM3 / SHA-256, HMAC, HKDF, PBKDF2, SM4-GCM / AES-256-GCM, SM4-CBC / CTR.
- `sm2`, `sm2_openssl`: SM2 signatures and encryption behind a backend interface (gmalg, or the
  system OpenSSL 3, chosen by name), `sm2_curve`: the curve and its encodings (Z_A, DER signatures,
  C1C3C2 ciphertexts, public keys) that both use, `signing`: SM2 or ECDSA P-256 keys and signed
  JSON documents.
- `suite`: the configured suite (gm | intl) and the start-up self-test.
- `keystore`: versioned keys in a sealed keystore, Vault Transit style.
- `audit`: the tamper-evident audit log (SM3 Merkle tree, signed checkpoints, proofs).
- `evidence`: signed evidence packs.
"""
