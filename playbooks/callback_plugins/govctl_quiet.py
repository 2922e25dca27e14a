"""The stdout callback govctl runs under ansible-runner's event callback (awx_display builds on it).

govctl reads every result from ansible-runner's events, so the human-readable text of Ansible's
default callback was pure cost: on the 30-host lab the controller's main process spent about a
quarter of its time rendering it (a unified diff per changed file, a line per host and task) for a
stdout nobody read. This one prints only what a person needs when a run goes wrong (failed and
unreachable hosts, one line each) and the recap. The events, with their diffs, are unchanged.
"""
from __future__ import annotations

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: govctl_quiet
    type: stdout
    short_description: only failures, unreachable hosts and the recap
    description:
      - govctl's runs read the results from ansible-runner's events; the text shows only what went wrong.
    options: {}  # awx_display merges the options of the callback it builds on: there must be a (empty) set
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "govctl_quiet"

    def _line(self, kind: str, result) -> None:
        message = str(result._result.get("msg") or result._result.get("stderr") or "")[:400]
        self._display.display(f"{kind}: [{result._host.get_name()}] {result._task.get_name()}: {message}")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._line("FAILED", result)

    def v2_runner_on_unreachable(self, result):
        self._line("UNREACHABLE", result)

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            counts = stats.summarize(host)
            self._display.display(f"{host}: " + " ".join(f"{k}={v}" for k, v in counts.items()))
