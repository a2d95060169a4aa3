"""The `voxroom` command: serve, token."""

from __future__ import annotations

import argparse
import sys

from voxroom.settings import add_arguments, load_settings


def _parse_ttl(text: str) -> float:
    """Seconds, or a number with s/m/h/d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1:] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 3600, 30m, 12h or 7d)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxroom", description="Typed text, heard in your own voice, live.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (WebSocket, HTTP API, demo page, metrics)")
    add_arguments(serve)

    token = commands.add_parser("token", help="print a token for an account of this deployment")
    add_arguments(token)
    token.add_argument("--user", required=True, help="account id (the token's sub)")
    token.add_argument("--kind", choices=("user", "bot"), default="user")
    token.add_argument("--ttl", type=_parse_ttl, default=24 * 3600.0, help="lifetime: seconds or 30m, 12h, 7d")
    token.add_argument("--room", action="append", dest="allowed_rooms", help="restrict to this room (repeatable)")

    enroll = commands.add_parser("enroll", help="enroll a recording as a voice (server stopped)")
    add_arguments(enroll)
    enroll.add_argument("file", help="WAV, Ogg/Opus, WebM or MP3, 10 s to 5 min of one speaker")
    enroll.add_argument("--user", required=True, help="the account whose voice this is")
    enroll.add_argument("--lang", choices=("zh", "en", "ja"), default=None, help="the recording's language")
    enroll.add_argument("--no-wait", action="store_true", help="do not wait for the voice fit to finish")

    detect = commands.add_parser(
        "detect", help="does this clip carry Voxroom's watermark? (exit 0 yes, 1 no, 2 bad file)"
    )
    detect.add_argument("file", help="WAV, Ogg/Opus, WebM or MP3")
    detect.add_argument("--json", action="store_true", help="print the answer as JSON")

    models = commands.add_parser("models", help="fetch model weights for optional engines")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    pull = models_commands.add_parser("pull", help="download official weights and check their hashes")
    pull.add_argument("model", choices=("gpt-sovits-v2",))
    pull.add_argument("--dir", required=True, help="models directory to fill")
    pull.add_argument("--with-bert", action="store_true", help="also fetch chinese-roberta-wwm-ext-large")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "detect":
        from pathlib import Path

        from synth.watermark.command import detect_command

        return detect_command(Path(args.file), as_json=args.json)
    if args.command == "models":
        from synth.engines.gptsovits.pull import main as pull_main

        return pull_main(["--dir", args.dir, *(["--with-bert"] if args.with_bert else [])])
    settings = load_settings(args)
    if args.command == "serve":
        from voxroom.app import serve

        serve(settings)
        return 0
    if args.command == "enroll":
        from synth.enroll.cli import enroll_file_command

        return enroll_file_command(
            args.file,
            args.user,
            data_dir=settings.data_dir,
            voice_key=settings.voice_key,
            language=args.lang or "unknown",
            fit_cpu_budget_s=settings.fit_cpu_s,
            fit_per_layer_timbre=settings.fit_layers,
            wait=not args.no_wait,
        )
    if args.command == "token":
        from gateway.auth import TokenAuthority

        print(TokenAuthority(settings.secret).mint(args.user, kind=args.kind, ttl_s=args.ttl, rooms=args.allowed_rooms))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
