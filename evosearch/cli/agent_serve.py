"""``evosearch agent serve MODEL [--adapter DIR]``: a fine-tuned proposer as an OpenAI-compatible endpoint.

It prints the base URL and the lines to paste into a campaign's ``llm:`` section, then serves
until Ctrl-C (see :mod:`evosearch.agent.serve`). Without the ``agent`` extra it says what to
install; a model or adapter folder that cannot be loaded, or a port in use, is one error line.
"""

from __future__ import annotations

import errno

import click

from evosearch.cli.options import BadInput, device_option


def config_snippet(name: str, url: str) -> str:
    """The model entry for a campaign's ``llm:`` section (docs/llm.md), served locally and free."""
    return (f"llm:\n  models:\n    - name: {name}\n      model: {name}\n      base_url: {url}\n"
            f"      price_in_per_1k: 0.0\n      price_out_per_1k: 0.0\n      timeout_s: 600\n")


def _announce(server, url: str) -> None:
    names = list(server.served.names)
    click.echo(f"serving {', '.join(names)} on {url} ({server.served.device}); Ctrl-C stops")
    click.echo("In a campaign config:\n")
    click.echo(config_snippet(names[0], url))


@click.command("serve", short_help="Serve a model (and a LoRA adapter) as an OpenAI-compatible endpoint.")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--adapter", type=click.Path(path_type=str), default=None,
              help="A PEFT LoRA adapter folder to load onto MODEL (e.g. what `agent sft` wrote).")
@click.option("--name", default=None,
              help="The name clients ask for (default: the adapter folder's name, else MODEL's folder name).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes the model to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--max-new-tokens", "max_new_tokens", type=click.IntRange(1), default=2048, show_default=True,
              help="The most tokens one answer may have, whatever a request asks.")
@device_option(default="auto", help="Where the model runs: auto takes the GPU when there is one.")
def serve_command(model: str, adapter: str | None, name: str | None, host: str, port: int, max_new_tokens: int,
                  device: str) -> None:
    """Serve MODEL, a local transformers folder, at http://HOST:PORT/v1 for campaigns' `llm:` models.

    Answers GET /v1/models and POST /v1/chat/completions with the tokenizer's chat template; one
    generation at a time. With --adapter, the adapter is served under its name and the base
    model under MODEL's folder name.
    """
    from evosearch.agent.serve import missing_extra

    problem = missing_extra()
    if problem:
        raise BadInput(problem)
    from evosearch.agent.serve import serve_forever

    click.echo(f"loading {model}" + (f" with the adapter {adapter}" if adapter else "") + " ...")
    try:
        serve_forever(model, adapter=adapter, host=host, port=port, model_name=name,
                      max_new_tokens_cap=max_new_tokens, device=device, ready=_announce,
                      log=lambda line: click.echo(line, err=True))
    except ValueError as err:
        raise BadInput(str(err)) from None
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise BadInput(f"port {port} on {host} is in use: pick another with --port (0 picks a free one)") from None
        raise BadInput(f"cannot serve on {host}:{port}: {err}") from None
    click.echo("stopped")
