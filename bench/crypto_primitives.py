#!/usr/bin/env python3
"""Benchmark govctl's 国密 primitives beside the pure-Python `gmssl` package and `openssl speed`
(the physical limit of this machine), in one run on the same machine. Every rate is per CPU
second, as `openssl speed` counts without -elapsed.

  .venv/bin/python bench/crypto_primitives.py [--seconds 3] [--json]

Measures SM3 and SM4-GCM throughput (MB/s, 1 MiB messages), SM2 sign and verify per second with
govctl's default SM2 backend (`auto`: the system OpenSSL when it passes the known answers) and with
gmalg (the fallback), and how far the default is from `openssl speed sm2` (the goal: within 2x).
gmssl has no GCM: its SM4-CBC is shown instead. Debian's OpenSSL 3.0 CLI has no SM4-GCM: its
SM4-CTR (GCM's keystream) is shown instead. gmssl is installed into a throwaway directory under
the cache, never into the project."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GMSSL_VERSION = "3.2.2"
MiB = 1 << 20


def rates(fn, seconds: float, rounds: int = 3) -> tuple[float, float]:
    """(calls per CPU second, calls per wall-clock second) of fn. CPU time (this process's user +
    system) is the yardstick `openssl speed` uses by default (its user time), so other work on a
    shared machine skews neither side; wall-clock rates fall with the machine's load. Each is the
    best of `rounds` rounds sharing `seconds` of CPU time."""
    fn()  # warm up
    best_cpu = best_wall = 0.0
    for _ in range(rounds):
        count, start, wall = 0, time.process_time(), time.perf_counter()
        while (elapsed := time.process_time() - start) < seconds / rounds:
            fn()
            count += 1
        best_cpu, best_wall = max(best_cpu, count / elapsed), max(best_wall, count / (time.perf_counter() - wall))
    return best_cpu, best_wall


def rate(fn, seconds: float, rounds: int = 3) -> float:
    """Calls per CPU second of fn (see rates)."""
    return rates(fn, seconds, rounds)[0]


def gmssl_modules():
    from core.paths import CACHE

    target = CACHE / "bench" / f"gmssl-{GMSSL_VERSION}"
    if not (target / "gmssl").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
                        f"gmssl=={GMSSL_VERSION}"], check=True)
    sys.path.insert(0, str(target))
    from gmssl import func, sm2, sm3, sm4

    return func, sm2, sm3, sm4


def openssl_speed(seconds: int) -> dict:
    def throughput(alg: str) -> float:
        out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "-bytes", str(16384), "-evp", alg],
                             capture_output=True, text=True, check=True).stdout
        line = next(l for l in out.splitlines() if l.lower().startswith(alg))
        return float(line.split()[-1].rstrip("k")) * 1000 / 1e6  # 1000s of bytes/s -> MB/s

    def sm2_round(*clock: str) -> tuple[float, float]:
        out = subprocess.run(["openssl", "speed", *clock, "-seconds", "1", "sm2"],
                             capture_output=True, text=True, check=True).stdout
        sign, verify = re.search(r"SM2 \(CurveSM2\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out).groups()
        return float(sign), float(verify)

    # The best of one-second rounds, as rates() does for govctl: the same yardstick on a shared machine.
    rounds = [sm2_round() for _ in range(max(3, seconds))]
    wall = [sm2_round("-elapsed") for _ in range(3)]
    return {"sm3_mb_s": throughput("sm3"), "sm4_mb_s": throughput("sm4-ctr"),
            "sm2_sign_s": max(r[0] for r in rounds), "sm2_verify_s": max(r[1] for r in rounds),
            "sm2_sign_wall_s": max(r[0] for r in wall), "sm2_verify_wall_s": max(r[1] for r in wall),
            "version": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}


def sm2_figures(seconds: float, sm2_backend: str) -> dict:
    """Sign and verify with a key made as govctl makes it: the default backend for "auto"."""
    from crypto import sm2

    backend = sm2.default_backend() if sm2_backend == sm2.AUTO else sm2.create_backend(sm2_backend)
    key_pair = sm2.SM2PrivateKey.generate(backend)
    message = b"x" * 256
    signature, public = key_pair.sign(message), key_pair.public_key()
    (sign, sign_wall), (verify, verify_wall) = (rates(lambda: key_pair.sign(message), seconds),
                                                rates(lambda: public.verify(message, signature), seconds))
    return {"sm2_sign_s": sign, "sm2_verify_s": verify, "sm2_sign_wall_s": sign_wall, "sm2_verify_wall_s": verify_wall}


def govctl_figures(seconds: float) -> dict:
    from cryptography.hazmat.backends.openssl import backend

    from crypto import primitives, sm2

    data, key, nonce = os.urandom(MiB), os.urandom(16), os.urandom(12)
    return {
        "sm3_mb_s": rate(lambda: primitives.digest("sm3", data), seconds) * MiB / 1e6,
        "sm4_mb_s": rate(lambda: primitives.aead_encrypt("sm4-gcm", key, nonce, data), seconds) * MiB / 1e6,
        **sm2_figures(seconds, sm2.AUTO),
        "version": f"cryptography 50.0.2 (bundled {backend.openssl_version_text()}), "
                   f"SM2 backend {sm2.selection()['backend']} ({sm2.default_backend().version})",
    }


def gmssl_figures(seconds: float) -> dict:
    func, sm2, sm3, sm4 = gmssl_modules()
    small = os.urandom(64 * 1024)  # pure Python: a smaller message keeps the run short
    listed = func.bytes_to_list(small)
    cipher = sm4.CryptSM4()
    cipher.set_key(os.urandom(16), sm4.SM4_ENCRYPT)
    iv = os.urandom(16)
    private = os.urandom(32).hex()
    # gmssl wants the public key as hex x||y; take it from govctl's SM2 to avoid its own key code.
    from crypto.sm2 import SM2PrivateKey

    public = SM2PrivateKey.from_bytes(bytes.fromhex(private)).public_key().to_bytes()[1:].hex()
    crypt = sm2.CryptSM2(private_key=private, public_key=public)
    message = b"x" * 256
    signature = crypt.sign_with_sm3(message)
    assert crypt.verify_with_sm3(signature, message)
    return {
        "sm3_mb_s": rate(lambda: sm3.sm3_hash(listed), seconds) * len(small) / 1e6,
        "sm4_mb_s": rate(lambda: cipher.crypt_cbc(iv, small), seconds) * len(small) / 1e6,
        "sm2_sign_s": rate(lambda: crypt.sign_with_sm3(message), seconds),
        "sm2_verify_s": rate(lambda: crypt.verify_with_sm3(signature, message), seconds),
        "version": f"gmssl {GMSSL_VERSION} (pure Python)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    results = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.1f}",
               "govctl": govctl_figures(args.seconds),
               "govctl, sm2_backend: gmalg": sm2_figures(args.seconds, "gmalg")
               | {"version": "SM2 in pure Python (the fallback)"},
               "gmssl": gmssl_figures(args.seconds),
               "openssl speed": openssl_speed(max(1, round(args.seconds)))}
    results["openssl speed / govctl"] = {
        f"sm2_{op}": round(results["openssl speed"][f"sm2_{op}_s"] / results["govctl"][f"sm2_{op}_s"], 2)
        for op in ("sign", "verify")}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}\n")
    print("| implementation | SM3 MB/s | SM4 MB/s | SM2 sign/s | SM2 verify/s |")
    print("|---|---:|---:|---:|---:|")
    notes = {"govctl": "SM4-GCM", "govctl, sm2_backend: gmalg": "", "gmssl": "SM4-CBC",
             "openssl speed": "SM4-CTR"}
    for name, mode in notes.items():
        r = results[name]
        sm3 = f"{r['sm3_mb_s']:.1f}" if "sm3_mb_s" in r else "(same as above)"
        sm4 = f"{r['sm4_mb_s']:.2f} ({mode})" if "sm4_mb_s" in r else "(same as above)"
        print(f"| {name}: {r['version']} | {sm3} | {sm4} | {r['sm2_sign_s']:.0f} | {r['sm2_verify_s']:.0f} |")

    ratio = results["openssl speed / govctl"]
    print(f"\nopenssl speed / govctl default: SM2 sign {ratio['sm2_sign']}x, verify {ratio['sm2_verify']}x")
    wall = {name: results[name] for name in ("govctl", "openssl speed")}
    print("wall clock (falls with the load): " + "; ".join(
        f"{name} {r['sm2_sign_wall_s']:.0f} sign/s, {r['sm2_verify_wall_s']:.0f} verify/s" for name, r in wall.items()))


if __name__ == "__main__":
    main()
