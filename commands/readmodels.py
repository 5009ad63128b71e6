"""project, export."""

from __future__ import annotations

import signal
import sys

import click

from commands.output import App, pass_app
from ledger.feeds import MODELS, write_rows


@click.command()
@click.option("--rebuild", is_flag=True, help="rebuild every model from position 0, then swap it in")
@click.option("--follow", is_flag=True, help="keep the models current as events arrive, until interrupted")
@pass_app
def project(app: App, rebuild: bool, follow: bool) -> None:
    """Bring the read models up to date (tables other apps may query).

    \b
    Example:
      leadledger project
      leadledger project --rebuild
    """
    def call(ledger):
        total = ledger.store.max_position()
        if total >= 20000 and sys.stderr.isatty() or total >= 20000 and rebuild:
            start = 0 if rebuild else ledger.views.position()
            with click.progressbar(length=max(total - start, 1), label="projecting",
                                   file=click.get_text_stream("stderr")) as bar:
                done = [start]

                def step(position: int) -> None:
                    bar.update(position - done[0])
                    done[0] = position

                result = ledger.project(rebuild, progress=step)
        else:
            result = ledger.project(rebuild)
        if follow:
            stopping = []
            signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
            click.echo(f"following from position {result['position']} (Ctrl-C to stop)", err=True)
            try:
                ledger.follow(lambda: bool(stopping),
                              on_batch=lambda p: click.echo(f"projected up to position {p}", err=True))
            except KeyboardInterrupt:
                pass
            result["position"] = ledger.views.position()
        return result

    app.run(call, lambda r: click.echo(
        f"read models {'rebuilt' if r['rebuilt'] else 'up to date'} at position {r['position']}"))


@click.command()
@click.argument("model", type=click.Choice([*MODELS, "events"]))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="write to FILE instead of stdout")
@click.option("--since", type=click.IntRange(min=0), default=0, help="events: only those after POSITION")
@pass_app
def export(app: App, model: str, fmt: str, out: str | None, since: int) -> None:
    """Write a read model's rows, or the events (the change feed), as JSON Lines or CSV.

    \b
    Example:
      leadledger export holdings --format csv --out holdings.csv
      leadledger export events --since 5120     # what came after position 5120
    """
    def call(ledger):
        rows = ledger.export_rows(model, since)
        if out is None:
            count = write_rows(rows, fmt, click.get_text_stream("stdout"), events=model == "events")
            return None if not app.json else {"model": model, "rows": count}
        with open(out, "w", encoding="utf-8", newline="") as f:
            count = write_rows(rows, fmt, f, events=model == "events")
        return {"model": model, "format": fmt, "out": out, "rows": count}

    if out is None and app.json:
        app.json = False  # the rows themselves are the output
    app.run(call, lambda r: r and click.echo(f"wrote {r['rows']} {r['model']} rows to {r['out']}", err=True),
            reader=True)


COMMANDS = [project, export]
