"""py-stats: a small real program in Python on VyomaOS, using only the standard library.

It reads temperature readings (CSV: time, sensor, celsius) from its granted folder, prints a
report per sensor, and then answers requests over IPC:

    @py-stats: summary          every sensor's figures, as JSON
    @py-stats: sensor attic     one sensor's figures
    @py-stats: alerts           the readings above the limit (`--limit`, in app.toml)
    @py-stats: reload           read the file again (after it changed)
"""
import argparse
import csv
import json
import statistics
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import ipc


def load(path):
    """The readings per sensor, and the lines that could not be read (line, why)."""
    per_sensor, skipped = {}, []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"time", "sensor", "celsius"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: no column {', '.join(sorted(missing))}")
        for row in reader:
            try:
                value = float(row["celsius"])
            except (TypeError, ValueError):
                skipped.append((reader.line_num, f"not a number: {row['celsius']!r}"))
                continue
            per_sensor.setdefault(row["sensor"], []).append((row["time"], value))
    return per_sensor, skipped


def summarize(readings):
    values = [v for _, v in readings]
    hottest = max(readings, key=lambda r: r[1])
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 2),
        "median": round(statistics.median(values), 2),
        "stdev": round(statistics.pstdev(values), 2),
        "min": min(values),
        "max": hottest[1],
        "max_at": hottest[0],
    }


class Stats:
    def __init__(self, path, limit):
        self.path, self.limit = path, limit
        self.reload()

    def reload(self):
        self.per_sensor, self.skipped = load(self.path)
        self.summary = {s: summarize(r) for s, r in sorted(self.per_sensor.items())}

    def alerts(self):
        return [
            {"sensor": s, "time": t, "celsius": v}
            for s, readings in sorted(self.per_sensor.items())
            for t, v in readings
            if v > self.limit
        ]

    def report(self):
        lines = [f"{'sensor':<12}{'n':>5}{'mean':>8}{'median':>8}{'min':>8}{'max':>8}  at"]
        for s, f in self.summary.items():
            lines.append(
                f"{s:<12}{f['count']:>5}{f['mean']:>8.2f}{f['median']:>8.2f}{f['min']:>8.2f}{f['max']:>8.2f}  {f['max_at']}"
            )
        for line, why in self.skipped:
            lines.append(f"skipped line {line}: {why}")
        lines.append(f"{len(self.alerts())} reading(s) above {self.limit} C")
        return "\n".join(lines)

    def answer(self, request):
        words = request.split()
        if words == ["summary"]:
            return json.dumps(self.summary, sort_keys=True)
        if len(words) == 2 and words[0] == "sensor":
            if words[1] not in self.summary:
                return f"error: no sensor {words[1]!r}; known: {', '.join(self.summary)}"
            return json.dumps(self.summary[words[1]], sort_keys=True)
        if words == ["alerts"]:
            return json.dumps(self.alerts())
        if words == ["reload"]:
            self.reload()
            return f"reloaded: {sum(f['count'] for f in self.summary.values())} readings"
        return f"error: unknown request {request!r}; ask summary, sensor NAME, alerts or reload"


# Made when the component is built: componentize-py keeps the modules imported then, and
# argparse imports some (gettext, shutil) only when a parser is made.
PARSER = argparse.ArgumentParser(prog="py-stats")
PARSER.add_argument("--file", default="/data/readings.csv")
PARSER.add_argument("--limit", type=float, default=40.0, help="alert above this, in C")


class Run(exports.Run):
    def run(self) -> None:
        args = PARSER.parse_args(sys.argv[1:])
        try:
            stats = Stats(args.file, args.limit)
        except (OSError, ValueError) as e:
            print(f"py-stats: cannot read the readings: {e}", file=sys.stderr)
            raise Err(None)
        print(stats.report(), flush=True)
        while True:
            m = ipc.recv(None)
            if m is None or m.reply_token is None:
                continue
            try:
                answer = stats.answer(m.body.decode("utf-8", "replace"))
            except (OSError, ValueError) as e:
                answer = f"error: {e}"
            try:
                ipc.reply(m.reply_token, answer.encode())
            except Err as e:
                print(f"py-stats: cannot answer {m.sender}: {e.value}", file=sys.stderr, flush=True)
