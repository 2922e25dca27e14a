"""A real PostgreSQL 15 primary with streaming standbys on loopback ports, for the replication tests.

PostgreSQL refuses to run as root, so every server command runs as the `postgres` user in a
temporary folder that user owns.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from .helpers import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*args: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    proc = subprocess.run([*prefix, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()}")


class PgCluster:
    def __init__(self, standbys: dict[str, str]):
        """standbys: application name (the standby's center) → synchronous | asynchronous."""
        self.base = Path(tempfile.mkdtemp(prefix="govctl-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.standbys = standbys
        self.ports: dict[str, int] = {}

    def dsn(self, center: str) -> str:
        return f"host=127.0.0.1 port={self.ports[center]} dbname=postgres user=postgres"

    def sql(self, center: str, statement: str):
        with psycopg.connect(self.dsn(center), autocommit=True) as conn:
            return conn.execute(statement).fetchall()

    def _start(self, center: str) -> None:
        data = self.base / center
        as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-l", str(self.base / f"{center}.log"),
                    "-w", "-t", "60", "start")

    def start(self, primary: str = "prod") -> "PgCluster":
        data = self.base / primary
        self.ports[primary] = free_port()
        as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--no-sync", "-E", "UTF8")
        sync = [name for name, mode in self.standbys.items() if mode == "synchronous"]
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.ports[primary]}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.base}'\nwal_level = replica\n"
                       "max_wal_senders = 10\nfsync = off\n"
                       f"synchronous_standby_names = '{','.join(sync)}'\n")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._start(primary)
        for name in self.standbys:
            self.ports[name] = free_port()
            sdata = self.base / name
            as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.ports[primary]),
                        "-U", "postgres", "-D", str(sdata), "-R", "-X", "stream", "--no-sync")
            with open(sdata / "postgresql.auto.conf", "a") as conf:
                conf.write(f"primary_conninfo = 'host=127.0.0.1 port={self.ports[primary]} "
                           f"user=postgres application_name={name}'\nport = {self.ports[name]}\n")
            self._start(name)
        return self

    def stop(self) -> None:
        for center in self.ports:
            data = self.base / center
            if (data / "postmaster.pid").exists():
                subprocess.run(["runuser", "-u", "postgres", "--", str(BIN / "pg_ctl"), "-D", str(data),
                                "-m", "immediate", "stop"] if os.geteuid() == 0 else
                               [str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                               capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
