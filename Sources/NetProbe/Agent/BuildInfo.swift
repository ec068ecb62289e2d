import CNetShims

/// What was built: the version and the source revision, for `--version`,
/// `netprobe_build_info` and the status page.
public enum BuildInfo {
  public static let version = "0.1.0"
  /// The git revision, passed by `make` as a C define (`NETPROBE_REVISION`) because
  /// SwiftPM has no way to stamp a string into Swift code; `unknown` otherwise.
  public static let revision = String(cString: cns_build_revision())
}
