"""The hub with access checks off: W1-access's baseline, for the benchmark only.

The same app as `hub serve` (the same settings from the environment, `build_services`,
`create_app`, one uvicorn worker with the same options), except that the access policy is
`ReleaseEverything`: every authenticated caller gets every field plain, no row rule, no policy
loaded or watched. Bearer tokens are still checked against the hub database. `hub serve` has no
such switch on purpose, so this lives in bench/ and refuses to listen anywhere but loopback.

Run: `python -m bench.hub_open_server --port N` with HUB_DATABASE_URL, HUB_MANIFESTS and the
manifests' connection URL variables set, as for `hub serve`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn

from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.config import SettingsError, load_settings
from hub.services import build_services

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hub_open_server", description="The hub with access checks off (benchmark only)."
    )
    parser.add_argument("--host", default="127.0.0.1", choices=LOOPBACK, help="loopback only")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = create_app(build_services(settings, policy=ReleaseEverything()))
    print(f"serving the hub WITH ACCESS CHECKS OFF at http://{args.host}:{args.port}/graphql (benchmark only)")
    # As `hub serve` runs it (hub/cli/): one worker, uvicorn's defaults, no access log.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
