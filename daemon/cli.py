"""`pydockerd`: parse flags, write the PID file, run the daemon until SIGTERM/SIGINT."""

import asyncio
import contextlib
import logging
import os
import signal
import sys

from daemon import __version__
from daemon.config import DaemonConfig, load

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


def _write_pidfile(cfg: DaemonConfig) -> None:
    if not cfg.pidfile:
        return
    path = cfg.pidfile
    with contextlib.suppress(FileNotFoundError, ValueError):
        other = int(path.read_text().strip())
        if other != os.getpid():
            try:
                os.kill(other, 0)
            except ProcessLookupError:
                pass
            else:
                raise SystemExit(
                    f"pydockerd: pid file {path} names a running process ({other}): is a daemon running?"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


async def _run(cfg: DaemonConfig) -> None:
    from daemon.daemon import Daemon

    loop = asyncio.get_running_loop()
    if sys.version_info < (3, 12):  # pidfd watcher: no thread per child (shims) as the default one does
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.get_event_loop_policy().set_child_watcher(watcher)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Daemon(cfg).serve(stop)


def main(argv: list[str] | None = None) -> None:
    cfg, args = load(argv)
    if args.version:
        print(f"pydockerd version {__version__}")
        return
    logging.basicConfig(
        level=LEVELS[cfg.log_level],
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _write_pidfile(cfg)
    try:
        asyncio.run(_run(cfg))
    finally:
        if cfg.pidfile:
            with contextlib.suppress(OSError):
                if cfg.pidfile.read_text().strip() == str(os.getpid()):
                    cfg.pidfile.unlink()


if __name__ == "__main__":
    main()
