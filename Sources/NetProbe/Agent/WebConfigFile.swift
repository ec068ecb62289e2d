import Synchronization

/// `--web.config.file`: read at start, and again with the configuration on SIGHUP and
/// `POST /-/reload`, so that a renewed certificate, a new user or a changed header needs no
/// restart. A bad new file (or one whose certificate does not load) keeps the running one
/// and fails the reload like a bad configuration.
public final class WebConfigFile: ReloadCompanion {
  public let path: String
  public let security: WebSecurity
  private let staged = Mutex<WebSecurity.Snapshot?>(nil)

  public init(path: String, security: WebSecurity) {
    self.path = path
    self.security = security
  }

  /// Reads the file, then the certificate, key and CA files it names (blocking file reads:
  /// never on the event loop). Errors carry the web config's FILE:LINE:COL.
  public static func load(_ path: String) -> Result<(config: WebConfig, snapshot: WebSecurity.Snapshot), ConfigErrors> {
    switch WebConfigLoader.load(path) {
    case .failure(let errors):
      return .failure(errors)
    case .success(let config):
      do {
        return .success((config, try WebSecurity.Snapshot.prepare(config)))
      } catch {
        let location = config.tls?.location ?? SourceLocation(line: 1, column: 1)
        return .failure(ConfigErrors([ConfigDiagnostic(location, "tls_server_config: \(error)")], file: path))
      }
    }
  }

  public func prepareReload() -> ConfigErrors? {
    switch WebConfigFile.load(path) {
    case .failure(let errors):
      return errors
    case .success(let loaded):
      if (loaded.config.tls != nil) != security.tlsEnabled {
        let location = loaded.config.tls?.location ?? SourceLocation(line: 1, column: 1)
        let change = security.tlsEnabled ? "removed" : "added"
        return ConfigErrors(
          [
            ConfigDiagnostic(
              location, "tls_server_config cannot be \(change) by a reload: the listener's scheme is fixed at start; restart the exporter")
          ], file: path)
      }
      staged.withLock { $0 = loaded.snapshot }
      return nil
    }
  }

  public func commitReload() {
    guard
      let snapshot = staged.withLock({ state in
        defer { state = nil }
        return state
      })
    else { return }
    security.replace(snapshot)
  }
}

extension WebConfig {
  /// One line for `--check-config`: what the web configuration turns on.
  public var summary: String {
    var parts: [String] = []
    if let tls {
      var text = "TLS \(tls.minVersion.rawValue)-\(tls.maxVersion.rawValue), client certificates: \(tls.clientAuth.rawValue)"
      if !tls.cipherSuites.isEmpty { text += ", \(tls.cipherSuites.count) cipher suites" }
      if !tls.curvePreferences.isEmpty { text += ", curves \(tls.curvePreferences.joined(separator: " "))" }
      parts.append(text)
    } else {
      parts.append("plain HTTP")
    }
    parts.append(
      basicAuthUsers.isEmpty ? "no basic auth" : "basic auth for \(basicAuthUsers.count) user\(basicAuthUsers.count == 1 ? "" : "s")")
    if !headers.isEmpty { parts.append("headers \(headers.map(\.name).joined(separator: ", "))") }
    return parts.joined(separator: "; ")
  }
}
