"""List what a partner node releases to you, and open one object, with relto.client.

Sign in first (``relto login ...``, docs/client.md); then::

    python examples/client_open.py --nation GBR                 # list GBR's objects for you
    python examples/client_open.py --nation GBR --open ID -o OUT

Exit status: 0 done, 3 denied (the holding node's reasons are printed), 1 any
other error (one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from relto.client import AccessDenied, ClientError, HomeSession, SavedSession
from relto.client.signin import default_session_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nation", required=True, help="the node holding the objects (GBR)")
    parser.add_argument("--open", dest="object_id", help="the id of the object to open")
    parser.add_argument("-o", "--out", type=Path, help="where to write what was opened")
    parser.add_argument("--session", type=Path, default=None, help="the saved sign-in")
    args = parser.parse_args(argv)
    try:
        saved = SavedSession.load(args.session or default_session_path())
        with HomeSession(
            saved.home_url, token=saved.access_token, dpop=saved.dpop, nation=saved.nation
        ) as me:
            me.discover()
            node = me.by_nation(args.nation.upper())
            if args.object_id is None:
                for obj in node.objects():
                    print(f"{obj.id}\t{obj.banner}\t{obj.title}")
                return 0
            data = me.open(node, args.object_id)
    except AccessDenied as denied:
        print(f"denied: {denied}", file=sys.stderr)
        for reason in denied.reasons:
            print(f"  {reason.code}: {reason.sentence}", file=sys.stderr)
        return 3
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.buffer.write(data)
    else:
        args.out.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
