"""Entry point: ``modelambda COMMAND ...``. Commands register their own arguments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelambda import __version__
from modelambda.cli import (
    advise_cmd,
    bench_cmd,
    build_cmd,
    delete_cmd,
    deploy_cmd,
    endpoint_cmd,
    init_cmd,
    invoke_cmd,
    models_cmd,
    optimize_cmd,
    template_cmd,
    up_cmd,
)

COMMANDS = (init_cmd, build_cmd, invoke_cmd, up_cmd, models_cmd, endpoint_cmd, template_cmd,
            deploy_cmd, delete_cmd, bench_cmd, advise_cmd, optimize_cmd)

EPILOG = """examples:
  modelambda init my-service --model model.onnx
  modelambda up examples/iris
  modelambda invoke iris --data '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelambda",
        description="Serve a trained model on AWS Lambda: one handler, six strategies.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"modelambda {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from modelambda.errors import ModelambdaError, SpecError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as exc:  # one problem on one line; several as a list under the file
        text = f"{exc.file}: {exc.problems[0]}" if len(exc.problems) == 1 else str(exc)
        print(f"modelambda {args.command}: error: {text}", file=sys.stderr)
        return 2
    except ModelambdaError as exc:
        print(f"modelambda {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # AWS errors (botocore, boto3) become one line with the fix; awserrors recognises them
        # by their class's module, so botocore is imported only by the commands that use it.
        from modelambda.awserrors import explain

        line = explain(exc)
        if line is None:
            raise
        print(f"modelambda {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
