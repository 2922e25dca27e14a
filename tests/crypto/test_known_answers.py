"""Known-answer vectors from the standards: GB/T 32905 (SM3), GB/T 32907 (SM4),
GB/T 32918.5 / GM/T 0003.5 (SM2 with the fixed k), RFC 8998 (SM4-GCM)."""
from __future__ import annotations

import pytest

from crypto import primitives
from crypto.sm2 import GmalgBackend, SM2PrivateKey, SM2PublicKey

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")

# GB/T 32918.5 Annex A (= GM/T 0003.5-2012): private key, its public key, Z_A, the fixed k.
SM2_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
SM2_PUBLIC = ("04" "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
              "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
SM2_ZA = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
SM2_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
SM2_R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
SM2_S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
# The encryption example's C1, C3, C2 in GM/T 0009 DER (as in OpenSSL's sm2_internal_test).
SM2_CIPHERTEXT = (
    "307C0220" "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "022100" "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "0420" "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "0413" "21886CA989CA9C7D58087307CA93092D651EFA")


def test_sm3_gbt32905_examples():
    assert primitives.digest("sm3", b"abc").hex() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert primitives.digest("sm3", b"abcd" * 16).hex() == \
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_gbt32907_single_block():
    assert primitives.sm4_ecb_encrypt_block(SM4_KEY, SM4_KEY).hex() == "681edf34d206965e86b3e94f536e4246"


@pytest.mark.slow
def test_sm4_gbt32907_one_million_encryptions():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    # One ECB context, fed the previous output 1,000,000 times (the standard's second example).
    encryptor = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    block = SM4_KEY
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm4_gcm_rfc8998_vector():
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex("".join(c * 16 for c in "ABCDEFEA"))
    sealed = primitives.aead_encrypt("sm4-gcm", SM4_KEY, nonce, plaintext, aad)
    assert sealed[:-16].hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
    assert sealed[-16:].hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"
    assert primitives.aead_decrypt("sm4-gcm", SM4_KEY, nonce, sealed, aad) == plaintext


def _fixed_k_key() -> SM2PrivateKey:
    return SM2PrivateKey(SM2_D, GmalgBackend(nonce_source=lambda bits: SM2_K))


def test_sm2_public_key_and_za_gmt0003_5():
    key = _fixed_k_key()
    assert key.public_key().to_bytes().hex().upper() == SM2_PUBLIC
    assert key.public_key().za(b"1234567812345678").hex().upper() == SM2_ZA


def test_sm2_signature_gmt0003_5_fixed_k():
    signature = _fixed_k_key().sign(b"message digest")
    assert signature.hex().upper() == "3046022100" + SM2_R + "022100" + SM2_S
    public = SM2PublicKey.from_bytes(bytes.fromhex(SM2_PUBLIC))
    assert public.verify(b"message digest", bytes.fromhex(SM2_R + SM2_S))
    assert not public.verify(b"message digesT", signature)


def test_sm2_encryption_gmt0003_5_fixed_k():
    key = _fixed_k_key()
    assert key.public_key().encrypt(b"encryption standard").hex().upper() == SM2_CIPHERTEXT
    assert key.decrypt(bytes.fromhex(SM2_CIPHERTEXT)) == b"encryption standard"


def test_sm2_openssl_backend_against_the_standard_example():
    from crypto.sm2_openssl import OpenSSLBackend

    backend = OpenSSLBackend()  # its k is random, so it verifies and decrypts the fixed-k outputs
    key = SM2PrivateKey(SM2_D, backend)
    assert key.public_key().to_bytes().hex().upper() == SM2_PUBLIC
    assert key.public_key().verify(b"message digest", bytes.fromhex(SM2_R + SM2_S))
    assert not key.public_key().verify(b"message digest", bytes.fromhex(SM2_S + SM2_R))
    assert key.decrypt(bytes.fromhex(SM2_CIPHERTEXT)) == b"encryption standard"
