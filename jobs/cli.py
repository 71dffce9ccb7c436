"""`cliplake`: one command, a subcommand per pipeline. Options are parsed once, here."""

import argparse
import sys

from curate_udfs.errors import EnvironmentProblem, StorageError
from jobs import caption, dedup, presigned, shard, split_annotate, sql
from jobs.session import PROFILES, get_spark

COMMANDS = {
    "split": (split_annotate, "split videos into shot clips, transcode, filter, embed and caption them (Cosmos split-annotate)"),
    "caption": (caption, "caption a lake's clips again as a new annotation version"),
    "shard": (shard, "write a webdataset for training from a lake's captioned clips (Cosmos shard-dataset)"),
    "dedup": (dedup, "semantic dedup (SemDeDup) of clip embeddings: k-means, then near-duplicates within each cluster"),
    "sql": (sql, "run Spark SQL over a lake's tables"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cliplake", description="Video data curation on Spark and Delta Lake.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary,
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        sub.add_argument("--spark-profile", default="local",
                         help=f"conf/{{profile}}.conf used when cliplake starts Spark itself ({', '.join(PROFILES)}); "
                              "ignored under spark-submit and on Databricks")
        module.add_arguments(sub)
    return parser


def run_command(argv: list[str] | None = None):
    """Parse ``argv`` and run the command; returns what the pipeline returns (its ``runs`` row)."""
    args = build_parser().parse_args(argv)
    module, _ = COMMANDS[args.command]
    try:
        presigned.check_options(args)
        spark = get_spark(args.spark_profile, f"cliplake-{args.command}")
        with presigned.staged(args):  # no-op unless --input/--output-presigned-s3-url
            return module.run(spark, args)
    except (EnvironmentProblem, ValueError, StorageError) as e:
        # Wrong options or a missing piece of the environment: one clear line, no traceback.
        print(f"cliplake {args.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    run_command(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
