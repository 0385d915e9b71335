"""py-ipc: a VyomaOS app in Python that answers requests over IPC. `@py-ipc: hi` in the
console asks it; when its first argument names another app (`args = ["echo"]` in
app.toml, and that app in `[capabilities.ipc] send`), it asks that app first and includes
the answer. Plain messages are printed (`log py-ipc`)."""
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import ipc


def describe(error) -> str:
    """An `ipc.Error` as text: its kind, and what it carries."""
    kind = type(error).__name__.removeprefix("Error_")
    value = getattr(error, "value", None)
    return kind if value is None else f"{kind}: {value}"


class Run(exports.Run):
    def run(self) -> None:
        peer = sys.argv[1] if len(sys.argv) > 1 else None
        print("py-ipc answers requests", flush=True)
        while True:
            m = ipc.recv(None)
            if m is None:
                continue
            text = m.body.decode("utf-8", "replace")
            if m.reply_token is None:
                print(f"message from {m.sender}: {text}", flush=True)
                continue
            answer = f'py-ipc heard "{text}"'
            if peer:
                try:
                    said = ipc.request(peer, m.body, 1000)
                    answer += f'; {peer} said "{said.decode("utf-8", "replace")}"'
                except Err as e:
                    answer += f"; {peer} did not answer: {describe(e.value)}"
            try:
                ipc.reply(m.reply_token, answer.encode())
            except Err as e:
                print(f"cannot answer: {describe(e.value)}", file=sys.stderr, flush=True)
