"""`python3 -m mirador.simulator --port 11434 --scenario FILE`: serve until interrupted."""

from __future__ import annotations

import signal
import sys

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=11434, show_default=True, type=int,
              help="Port to listen on; 0 picks a free one (the URL is printed).")
@click.option("--scenario", type=click.Path(dir_okay=False), default=None,
              help="Scenario YAML: server version, registry, built models, behaviours.")
def main(host: str, port: int, scenario: str | None) -> None:
    """Run an Ollama-compatible simulator (for demos and tests; not a real model server)."""
    from mirador.errors import ConfigError
    from mirador.simulator import Simulator, load_scenario

    try:
        sim = Simulator(load_scenario(scenario), host=host, port=port)
    except (ConfigError, ValueError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"Error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    print(sim.url, flush=True)  # first line of stdout: where to point OLLAMA_HOST
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sim._server.serve_forever(poll_interval=0.05)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        sim._server.server_close()


if __name__ == "__main__":
    main()
