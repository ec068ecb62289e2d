#!/usr/bin/env python3
"""Writes Sources/NetProbe/Config/EmbeddedConfig.swift from config/netprobe.yml.

Run it (`make embed`) after editing the default config; a unit test fails while the two differ.
"""
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
text = (root / "config" / "netprobe.yml").read_text()
assert '"""#' not in text, "the default config may not contain a raw string delimiter"
swift = (
    "/// The default configuration, compiled in, used when no `--config.file` is given.\n"
    "///\n"
    "/// It is `config/netprobe.yml` verbatim (a test keeps the two identical; `make embed`\n"
    "/// regenerates this file): loopback targets only, so that running the exporter with no\n"
    "/// arguments never sends a packet off the host.\n"
    "public enum EmbeddedConfig {\n"
    '  public static let text = #"""\n'
    + text
    + '\n"""#\n}\n'
)
(root / "Sources" / "NetProbe" / "Config" / "EmbeddedConfig.swift").write_text(swift)
