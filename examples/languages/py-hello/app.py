"""py-hello: a VyomaOS app in Python. It prints its arguments and the variables it was
given, then ends; `log py-hello` in the console shows what it printed."""
import os
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print(f"hello from py-hello (Python), args {sys.argv}")
        for k, v in os.environ.items():
            print(f"{k}={v}")
