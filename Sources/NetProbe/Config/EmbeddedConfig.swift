/// The default configuration, compiled in, used when no `--config.file` is given.
///
/// It is `config/netprobe.yml` verbatim (a test keeps the two identical; `make embed`
/// regenerates this file): loopback targets only, so that running the exporter with no
/// arguments never sends a packet off the host.
public enum EmbeddedConfig {
  public static let text = #"""
    # netprobe_exporter — the default configuration.
    #
    # It probes loopback only, so that `make run` is safe on any host: nothing leaves the
    # machine. Copy it, then add your own targets and multicast groups; every key is documented
    # in the README ("Configuration reference") and config/examples/ shows larger setups.

    defaults:
      interval: 1s        # one echo request per target per second
      timeout: 1s         # a reply later than this counts as lost (and as late if it comes)
      window: 100         # the loss, RTT and jitter gauges cover the last 100 probes
      labels:
        env: local

    targets:
      - name: loopback-v4
        host: 127.0.0.1
      - name: loopback-v6
        host: "::1"

    """#
}
