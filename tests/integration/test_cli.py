"""The ``balances`` command line: config inspection and the stand-in command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from balances import __version__
from balances.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_config_show_prints_the_effective_configuration_without_secrets() -> None:
    env = {"BALANCES_SYNC_CONCURRENCY": "4", "BALANCES_NETWORKS__MAINNET__API_KEY": "hush"}
    result = runner.invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["sync_concurrency"] == 4
    assert shown["networks"]["mainnet"]["api_url"] == "https://api.hiro.so"
    assert "hush" not in result.stdout


def test_config_show_names_a_bad_variable_and_fails() -> None:
    result = runner.invoke(app, ["config", "show"], env={"BALANCES_SYNC_CONCURRENCY": "x"})
    assert result.exit_code == 2
    assert "BALANCES_SYNC_CONCURRENCY='x'" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.timeout(60)
def test_fake_chain_command_serves_the_demo_ledger() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "balances", "testing", "fake-chain", "--port", str(port)]
    process = subprocess.Popen(
        command, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        body = _wait_for_json(f"http://127.0.0.1:{port}/extended", process)
        assert body["chain_tip"]["block_height"] > 0
        info = httpx.get(f"http://127.0.0.1:{port}/v2/info", timeout=5).json()
        assert info["stacks_tip_height"] == body["chain_tip"]["block_height"]
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_for_json(url: str, process: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"fake-chain exited early: {stderr}")
        try:
            answer: dict[str, object] = httpx.get(url, timeout=2).json()
            return answer
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered at {url}")
