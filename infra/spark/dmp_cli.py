"""spark-submit entry that runs ``dmp`` CLI commands in ONE Spark application (one JVM start).

    spark-submit infra/spark/dmp_cli.py ingest-identities --source F --lake L ::: \
        ingest-suppression --name opt_out --source F2 --lake L

Commands are separated by ``:::`` and run in order; the first failure stops the run with exit 1.
The DAGs use it for the small reference loads (identities, suppression lists) that have no job of
their own; everything else goes through ``jobs/<step>.py``.
"""

from __future__ import annotations

import sys

SEPARATOR = ":::"


def split_commands(argv: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            commands.append([])
        else:
            commands[-1].append(arg)
    return [c for c in commands if c]


def main(argv: list[str] | None = None) -> int:
    import click

    from dmp.cli import app
    from dmp.contracts.errors import DmpError

    for command in split_commands(sys.argv[1:] if argv is None else argv):
        print(f"dmp {' '.join(command)}", flush=True)
        try:
            app(command, standalone_mode=False)
        except DmpError as exc:
            print(f"error: dmp {command[0]}: {exc}", file=sys.stderr)
            return 1
        except click.ClickException as exc:  # usage errors: unknown option, missing value
            print(f"error: dmp {command[0]}: {exc.format_message()}", file=sys.stderr)
            return 2
        except SystemExit as exc:
            if exc.code not in (0, None):
                return int(exc.code) if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
