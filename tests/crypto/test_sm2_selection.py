"""Which SM2 backend signs: `sm2_backend: auto` (the default) takes the system OpenSSL only when
it passes the GB/T 32918 known answers, else gmalg, says so once, and reports it; an explicit
choice wins. The OpenSSL backend's cached keys and contexts stay correct across keys and threads."""
from __future__ import annotations

import json
import logging
import threading

import pytest

from crypto import sm2, sm2_kat
from crypto.sm2 import GmalgBackend, SM2PrivateKey, SM2PublicKey
from crypto.sm2_curve import N
from crypto.sm2_openssl import OpenSSLBackend

from .conftest import run_govctl

MESSAGE = "封禁名单 blocklist 2026-12-06".encode()
HERE = "tests.crypto.test_sm2_selection"


class WrongSignatureBackend(OpenSSLBackend):
    """A libcrypto that verifies correctly but signs wrongly (s off by one)."""

    def sign(self, d, public, uid, message):
        r, s = super().sign(d, public, uid, message)
        return r, s % (N - 1) + 1


class AcceptsAnythingBackend(OpenSSLBackend):
    """A libcrypto whose verify says yes to everything."""

    def verify(self, public, uid, message, r, s):
        return True


class WrongPublicKeyBackend(OpenSSLBackend):
    def public_point(self, d):
        x, y = super().public_point(d)
        return x, (-y) % sm2.P  # still on the curve: the negated point


@pytest.fixture
def registry(monkeypatch):
    """The backend registry as the test leaves it, chosen anew before and after the test."""
    sm2.use_backend(sm2.AUTO)
    sm2.choose_again()
    yield lambda name, target: monkeypatch.setitem(sm2.BACKENDS, name, f"{HERE}:{target}")
    monkeypatch.undo()
    sm2.choose_again()


def test_auto_chooses_openssl_where_it_passes_the_known_answers(registry):
    chosen = sm2.selection()
    assert chosen["backend"] == "openssl" and chosen["configured"] == "auto"
    assert chosen["refused"] == {} and "known answers" in chosen["reason"]
    assert isinstance(sm2.default_backend(), OpenSSLBackend)
    assert SM2PrivateKey.generate()._backend is sm2.default_backend()


@pytest.mark.parametrize("impostor, why", [
    ("WrongSignatureBackend", "signing equation"),
    ("AcceptsAnythingBackend", "altered message or signature verifies"),
    ("WrongPublicKeyBackend", "public key derived"),
])
def test_a_failed_vector_falls_back_to_gmalg_and_says_so_once(registry, caplog, impostor, why):
    registry("openssl", impostor)
    with caplog.at_level(logging.WARNING, logger="crypto.sm2"):
        key = SM2PrivateKey.generate()
        for _ in range(3):
            sm2.default_backend()
    assert isinstance(sm2.default_backend(), GmalgBackend) and key._backend.name == "gmalg"
    chosen = sm2.selection()
    assert chosen["backend"] == "gmalg" and why in chosen["refused"]["openssl"]
    assert why in chosen["reason"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "gmalg" in warnings[0] and why in warnings[0]
    assert key.public_key().verify(MESSAGE, key.sign(MESSAGE))


def test_the_known_answers_catch_each_impostor_directly():
    for impostor in (WrongSignatureBackend, AcceptsAnythingBackend, WrongPublicKeyBackend):
        with pytest.raises(sm2_kat.KnownAnswerFailure):
            sm2_kat.check(impostor())
    sm2_kat.check(OpenSSLBackend())
    sm2_kat.check(GmalgBackend())


def test_no_backend_passing_stops_with_a_clear_error(registry):
    registry("openssl", "WrongSignatureBackend")
    registry("gmalg", "AcceptsAnythingBackend")
    with pytest.raises(sm2.UnsupportedError, match="no SM2 backend passed the GB/T 32918 known answers"):
        sm2.default_backend()


def test_missing_libcrypto_falls_back(registry, monkeypatch):
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert sm2.selection()["backend"] == "gmalg"
    assert "libcrypto (OpenSSL 3) is not installed" in sm2.selection()["refused"]["openssl"]


@pytest.mark.slow  # a govctl process
def test_libcrypto_without_sm2_falls_back_and_is_reported(state, tmp_path):
    # A real libcrypto without SM2: the system OpenSSL with only its base provider loaded.
    conf = tmp_path / "openssl-no-sm2.cnf"
    conf.write_text("openssl_conf = init\n[init]\nproviders = providers\n"
                    "[providers]\nbase = base\n[base]\nactivate = 1\n")
    result = run_govctl("crypto", "backends", "--json", env={"OPENSSL_CONF": str(conf)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["in_use"] == "gmalg" and report["configured"] == "auto"
    assert not report["backends"]["openssl"]["passed"]
    assert "has no SM2" in report["backends"]["openssl"]["detail"]
    assert report["backends"]["gmalg"]["passed"]
    assert result.stderr.decode().count("SM2 backend gmalg in use") == 1


@pytest.mark.slow  # a govctl process
def test_backends_command_reports_openssl_by_default(state):
    result = run_govctl("crypto", "backends", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["in_use"] == "openssl" and report["version"].startswith("OpenSSL 3")
    assert all(entry["passed"] for entry in report["backends"].values())
    assert b"in use" not in result.stderr  # no fallback, no warning


def test_an_explicit_choice_wins(state, registry):
    from crypto.suite import load_settings

    (state / "crypto" / "config.yaml").write_text("sm2_backend: gmalg\nkdf_iterations: 100000\n")
    load_settings()
    assert sm2.selection() == {"backend": "gmalg", "configured": "gmalg", "refused": {},
                               "reason": "chosen by `sm2_backend: gmalg` in the crypto configuration"}
    # Chosen explicitly, even a backend that fails the known answers is used (the operator said so).
    registry("openssl", "WrongPublicKeyBackend")
    (state / "crypto" / "config.yaml").write_text("sm2_backend: openssl\nkdf_iterations: 100000\n")
    sm2.use_backend("openssl")
    assert isinstance(sm2.default_backend(), WrongPublicKeyBackend)


def test_bad_backend_name_in_the_configuration_is_named(state):
    from crypto.suite import load_settings

    (state / "crypto" / "config.yaml").write_text("sm2_backend: fastest\n")
    with pytest.raises(sm2.BadInput, match="'fastest' is not one of \\['auto', 'gmalg', 'openssl'\\]"):
        load_settings()


@pytest.mark.parametrize("uid", [sm2.DEFAULT_ID, "张三@政务云".encode()])
def test_signatures_cross_verify_between_backends(uid):
    fast, slow = OpenSSLBackend(), GmalgBackend()
    for signer, checker in ((fast, slow), (slow, fast)):
        key = SM2PrivateKey.generate(signer)
        other = SM2PublicKey(key.public_key().point, checker)
        signature = key.sign(MESSAGE, uid)
        assert other.verify(MESSAGE, signature, uid)
        assert not other.verify(MESSAGE + b".", signature, uid)
        assert not other.verify(MESSAGE, signature, uid + b"x")


def test_cached_keys_stay_right_beyond_the_cache_size():
    backend = OpenSSLBackend(cache_size=2)
    keys = [SM2PrivateKey.generate(backend) for _ in range(5)]
    signatures = [key.sign(MESSAGE) for key in keys] * 2 + [key.sign(MESSAGE) for key in keys]
    for round_ in range(3):
        for i, key in enumerate(keys):
            assert key.public_key().verify(MESSAGE, signatures[round_ * 5 + i])
            assert not keys[(i + 1) % 5].public_key().verify(MESSAGE, signatures[round_ * 5 + i])
    # The keystore loads a key per signature: the same scalar must find the same OpenSSL key.
    again = SM2PrivateKey.from_bytes(keys[0].to_bytes(), backend)
    assert again.public_key().point == keys[0].public_key().point


def test_threads_share_one_key_safely():
    backend = OpenSSLBackend()
    key = SM2PrivateKey.generate(backend)
    public = key.public_key()
    results, errors = [], []

    def work(n):
        try:
            for i in range(50):
                message = MESSAGE + f"{n}-{i}".encode()
                signature = key.sign(message)
                results.append((message, signature, public.verify(message, signature),
                                public.verify(message + b"!", signature)))
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 200
    assert all(good and not bad for _, _, good, bad in results)
    assert len({signature for _, signature, _, _ in results}) == 200  # fresh nonces
    checker = SM2PublicKey(public.point, GmalgBackend())  # an independent check on a sample
    assert all(checker.verify(message, signature) for message, signature, _, _ in results[::40])


@pytest.mark.slow  # a govctl process
def test_backends_command_names_a_bad_configuration(state):
    (state / "crypto" / "config.yaml").write_text("sm2_backend: fastest\n")
    result = run_govctl("crypto", "backends")
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert b"'fastest' is not one of" in result.stderr and b"fix the file" in result.stderr
