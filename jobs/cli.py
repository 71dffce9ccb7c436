"""`cliplake`: one command, a subcommand per pipeline. Options are parsed once, here.

The pipeline modules import pyspark, which the wheel does not bring (a cluster has its own; the
`spark` extra installs one locally), so they are imported only when used: ``main`` can then say
what is missing instead of failing with an import traceback.
"""

import argparse
import importlib
import importlib.util
import sys

from curate_udfs.errors import EnvironmentProblem, LakeConflict, StorageError
from jobs import config_file

COMMANDS = {  # name -> (module under jobs/, summary)
    "split": ("split_annotate", "split videos into shot clips, transcode, filter, embed and caption them (Cosmos split-annotate)"),
    "caption": ("caption", "caption a lake's clips again as a new annotation version"),
    "shard": ("shard", "write a webdataset for training from a lake's captioned clips (Cosmos shard-dataset)"),
    "dedup": ("dedup", "semantic dedup (SemDeDup) of clip embeddings: k-means, then near-duplicates within each cluster"),
    "sql": ("sql", "run Spark SQL over a lake's tables"),
    "export-cosmos": ("export_cosmos", "write a lake out as Cosmos-Curate's split output folder (clips, metas, embeddings)"),
    "import-cosmos": ("import_cosmos", "read a Cosmos-Curate split output folder into a lake's tables, keeping its ids"),
    "vacuum": ("vacuum", "remove media files no row references, and old table files, after a retention"),
    "report": ("lake_report", "write a static HTML report of a lake (gallery, plots, timelines, duplicates, errors, runs)"),
}
SPARK_PACKAGES = {"pyspark": "pyspark", "delta": "delta-spark"}  # import name -> distribution


def missing_spark_packages() -> list[str]:
    """The distributions of ``SPARK_PACKAGES`` this Python cannot import."""
    return [dist for name, dist in SPARK_PACKAGES.items() if importlib.util.find_spec(name) is None]


def _module(command: str):
    return importlib.import_module(f"jobs.{COMMANDS[command][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``cliplake`` parser; with ``only``, just that command gets its options (the others' modules,
    torch among their imports, are not imported to parse a command that does not use them)."""
    from jobs.session import PROFILES

    parser = argparse.ArgumentParser(prog="cliplake", description="Video data curation on Spark and Delta Lake.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary,
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if only is not None and name != only:
            continue
        sub.add_argument("--verbose", action="store_true",
                         help="show Spark's own log (WARN and up; off without it) and the full stack trace of "
                              "an expected failure (disk full, conflicts, storage refused...)")
        sub.add_argument("--spark-profile", default="local",
                         help=f"jobs/profiles/{{profile}}.conf used when cliplake starts Spark itself ({', '.join(PROFILES)}); "
                              "ignored under spark-submit and on Databricks")
        sub.add_argument("--config", metavar="FILE", default=None,
                         help="YAML or JSON file of this command's options (keys: long option names, e.g. "
                              "motion-filter: enable; lists for options taking several values; true/false for flags); "
                              "options on the command line win")
        _module(name).add_arguments(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``argv`` (default: ``sys.argv[1:]``) parsed, with the options of its ``--config FILE`` filled in.

    Example: ``parse_args(["dedup", "--config", "dedup.yaml", "--n-clusters", "8"])``: the file's
    options, ``--n-clusters`` from the command line. A config file that cannot be used (unknown key,
    a value its option refuses) prints one line and exits with status 2, as argparse does.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    named = next((token for token in argv if not token.startswith("-")), None)
    only = named if named in COMMANDS else None

    def build_parser_for_command() -> argparse.ArgumentParser:
        return build_parser(only)

    try:
        argv = config_file.expand(argv, build_parser_for_command)
    except config_file.ConfigError as e:
        command = next((t for t in argv if t in COMMANDS), None)
        print(f"cliplake{' ' + command if command else ''}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return build_parser(only).parse_args(argv)


def run_command(argv: list[str] | None = None):
    """Parse ``argv`` and run the command; returns what the pipeline returns (its ``runs`` row)."""
    from jobs import failures, presigned, progress
    from jobs.session import get_spark

    args = parse_args(argv)
    try:
        presigned.check_options(args)
        progress.interval_from_env()  # a wrong CLIPLAKE_PROGRESS_INTERVAL fails before Spark starts
        module = _module(args.command)
        # A command may do a small input's whole run with no JVM (dedup on a folder lake: delta-rs).
        outcome = module.run_without_spark(args) if hasattr(module, "run_without_spark") else None
        if outcome is not None:
            return outcome
        spark, early = _spark_and_early_work(module, args, lambda light_jvm: get_spark(
            args.spark_profile, f"cliplake-{args.command}", verbose=args.verbose, light_jvm=light_jvm))
        with presigned.staged(args):  # no-op unless --input/--output-presigned-s3-url
            with progress.shown(spark):  # a line per running stage on stderr
                return module.run(spark, args) if early is None else module.run(spark, args, early)
    except (EnvironmentProblem, ValueError, StorageError, LakeConflict) as e:
        # Wrong options or a missing piece of the environment: one clear line, no traceback.
        if args.verbose:
            raise
        print(f"cliplake {args.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as e:
        sentence = None if args.verbose else failures.explain(e)
        if sentence is None:  # a bug: the stack trace is what helps
            raise
        print(f"cliplake {args.command}: error: {sentence}", file=sys.stderr)
        raise SystemExit(2) from None


def _spark_and_early_work(module, args: argparse.Namespace, start_spark):
    """``start_spark(light_jvm)``, and what the command's early work gave (None without any).

    A command module may define ``LIGHT_JVM = True`` (its JVM only moves data and commits while
    Python works) and ``early_work(args)``: from a first look at the input, work that needs no Spark
    (a callable, or None). That work runs while the JVM starts, whose seconds are mostly waiting or
    on another core, and leaves the JVM only the writes.
    """
    plan = getattr(module, "early_work", None)
    work = plan(args) if plan else None
    light = getattr(module, "LIGHT_JVM", False) or work is not None
    if work is None:
        return start_spark(light), None
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cliplake-spark-start") as pool:
        starting = pool.submit(start_spark, light)
        early = work()
        return starting.result(), early


def main(argv: list[str] | None = None) -> int:
    missing = missing_spark_packages()
    if missing:
        print(f"cliplake: error: {' and '.join(missing)} not found. cliplake runs on the Spark of the Python it is "
              "started with: use a Spark cluster's Python (Databricks, EMR: spark-submit), or install a local "
              "Spark with pip install 'cliplake[spark]'", file=sys.stderr)
        return 2
    run_command(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
