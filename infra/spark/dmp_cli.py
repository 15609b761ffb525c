"""spark-submit entry that runs ``dmp`` CLI commands in ONE Spark application (one JVM start).

    spark-submit infra/spark/dmp_cli.py ingest-identities --source F --lake L ::: \
        ingest-suppression --name opt_out --source F2 --lake L

Commands are separated by ``:::`` and run in order; the first failure stops the run (exit 1, or
2 for a usage error). The DAGs submit the same code from the installed package
(``dmp/cli/__main__.py``), so this file is only a convenience for people in a checkout.
"""

import sys

from dmp.cli import run_commands

if __name__ == "__main__":
    sys.exit(run_commands(sys.argv[1:]))
