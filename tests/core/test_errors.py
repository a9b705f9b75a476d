"""A signal ends the program as that signal even when Python swallows its
exception: raised inside a finalizer (the garbage collector runs those at
any allocation), KeyboardInterrupt is printed as "Exception ignored" and the
program carries on; the training loop and the CLI wrapper raise it again."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
import pytorch_lightning as pl
from sklearn.datasets import make_moons

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.core.errors import cli, raise_pending
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig



class SignalledWhileFinalized:
    """Sends itself the signal while being collected: the handler's exception is swallowed."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        os.kill(os.getpid(), self.signum)
        for _ in range(1000):  # the handler runs between these bytecodes, inside the finalizer
            pass


@pytest.fixture(autouse=True)
def main_thread():
    assert threading.current_thread() is threading.main_thread()  # where signal handlers run


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_swallowed_signal_still_ends_the_program_with_its_code(signum, code, capsys):
    carried_on = []

    @cli
    def main():
        SignalledWhileFinalized(signum)  # collected at once
        carried_on.append(True)

    with pytest.raises(SystemExit) as ended:
        main()
    assert carried_on == [True]  # the exception was indeed swallowed: the test shows the case it claims
    assert ended.value.code == code
    raise_pending()  # handled: nothing is left to interrupt what this process does next
    assert capsys.readouterr().err.strip().splitlines() == [  # one line, no "Exception ignored" report
        {130: "error: interrupted (Ctrl-C)", 143: "error: terminated (SIGTERM)"}[code]]


def test_training_stops_at_the_end_of_the_chunk_a_swallowed_ctrl_c_arrived_in():
    X, y = make_moons(300, noise=0.3, random_state=0)
    splits = Splits(X={"train": X[:200], "dev": X[200:], "test": X[200:]},
                    y={"train": y[:200], "dev": y[200:], "test": y[200:]}, classes=np.array([0, 1]))
    steps = []

    class Interrupter(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if module.steps == 0:
                SignalledWhileFinalized(signal.SIGINT)

        def on_exception(self, trainer, module, exception):
            steps.append(module.steps)

    @cli
    def main():
        fit([Member(0, RecipeConfig())], ModelConfig(hidden=[8], activation="relu", init="he"),
            TrainerConfig(optimizer="sgd", lr=0.1, max_steps=10**6, eval_every=100), splits, callbacks=[Interrupter()])

    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 130 and steps == [100]  # the first chunk, not a million steps


@pytest.mark.parametrize("reply, cause", [
    (b"", "connection reset"),  # closed before any reply
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5284\r\n\r\n{", "reply cut off")])
def test_a_tracking_server_gone_mid_request_is_one_line(reply, cause, monkeypatch, capsys):
    """A real socket on 127.0.0.1 that dies mid-request, as a killed `mlflow
    server` does (CI saw the cut-off reply: urllib3's IncompleteRead under
    requests' ChunkedEncodingError under MlflowException): one line, exit 1."""
    import socket

    from mlflow import MlflowClient

    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    def die_mid_request():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(reply)
        if not reply:  # linger 0: a reset, as from a killed process; else a plain close mid-body
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.close()

    server = threading.Thread(target=die_mid_request, daemon=True)
    server.start()
    with pytest.raises(SystemExit) as exit:
        cli(lambda: MlflowClient(url).get_run("0" * 32))()
    server.join(timeout=10)
    listener.close()
    assert exit.value.code == 1
    assert capsys.readouterr().err == (f"error: the MLflow tracking server {url} stopped answering ({cause}): start "
                                       "it again and rerun (the runs it could not end show KILLED after the next run)\n")
