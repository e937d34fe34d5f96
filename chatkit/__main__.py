"""`python -m chatkit doctor` checks this machine for the course; `prefetch` downloads models ahead of a workshop."""

import sys

from . import doctor, prefetch

COMMANDS = {"doctor": doctor.main, "prefetch": prefetch.main}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(
            f"usage: python -m chatkit {{{','.join(COMMANDS)}}} [options]\n"
            "  doctor   check Python, packages, memory, 16-bit maths, the Hub and the models; "
            "exit 1 on a failure\n"
            "  prefetch [MODEL ...] [--dry-run] [--yes]   download models into the Hugging Face cache, "
            "then check they load offline",
            file=sys.stderr,
        )
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
