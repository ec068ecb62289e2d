import FoundationEssentials

/// The web configuration file of `--web.config.file`: the exporter-toolkit format every
/// Prometheus exporter reads (TLS, client certificates, bcrypt basic auth, extra headers),
/// so an operator reuses the file written for node_exporter.
///
/// Read with the YAML-lite reader, so errors name FILE:LINE:COL and unknown keys get a
/// suggestion. Keys of the toolkit this exporter does not implement are errors, never
/// silently ignored: a `client_allowed_sans` that did nothing would be a hole.
public struct WebConfig: Sendable, Equatable {
  /// TLS for every endpoint; nil serves plain HTTP.
  public var tls: WebTLSConfig?
  /// User → bcrypt hash, in file order; empty leaves the endpoints open.
  public var basicAuthUsers: [WebUser] = []
  /// Extra response headers (`http_server_config.headers`), in file order.
  public var headers: [WebHeader] = []

  public init() {}
}

public struct WebUser: Sendable, Equatable {
  public var name: String
  public var hash: String
}

public struct WebHeader: Sendable, Equatable {
  public var name: String
  public var value: String
}

/// `tls_server_config`, with paths already resolved against the web config's directory.
public struct WebTLSConfig: Sendable, Equatable {
  public var certFile: String
  public var keyFile: String
  public var clientAuth: ClientAuthType = .noClientCert
  public var clientCAFile: String?
  public var minVersion: TLSVersion = .tls12
  public var maxVersion: TLSVersion = .tls13
  /// Go names of TLS 1.2 suites, in order; empty keeps OpenSSL's defaults.
  public var cipherSuites: [String] = []
  /// Go names of groups, in order; empty keeps OpenSSL's defaults.
  public var curvePreferences: [String] = []
  /// Where `tls_server_config` starts, for errors found when its files are read.
  public var location = SourceLocation(line: 1, column: 1)

  public init(certFile: String, keyFile: String) {
    self.certFile = certFile
    self.keyFile = keyFile
  }

  /// `client_auth_type`, with the toolkit's names.
  public enum ClientAuthType: String, Sendable, CaseIterable {
    case noClientCert = "NoClientCert"
    case requestClientCert = "RequestClientCert"
    case requireAnyClientCert = "RequireAnyClientCert"
    case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
    case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

    /// Whether client certificates are checked against `client_ca_file`.
    public var verifies: Bool { self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert }
  }

  public enum TLSVersion: String, Sendable, CaseIterable, Comparable {
    case tls10 = "TLS10"
    case tls11 = "TLS11"
    case tls12 = "TLS12"
    case tls13 = "TLS13"

    /// 10 for TLS 1.0 … 13 for TLS 1.3.
    public var number: Int { Int(rawValue.dropFirst(3))! }

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.number < b.number }
  }

  /// Go's names of the TLS 1.2 (and older) suites crypto/tls implements, to OpenSSL's.
  public static let cipherSuiteNames: KeyValuePairs<String, String> = [
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
  ]
  /// TLS 1.3 suites: always on, in Go as in OpenSSL here; naming one is an error.
  static let tls13Suites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]

  /// The toolkit's curve names to OpenSSL's group names.
  public static let curveNames: KeyValuePairs<String, String> = [
    "CurveP256": "P-256", "CurveP384": "P-384", "CurveP521": "P-521", "X25519": "X25519",
  ]

  /// The OpenSSL cipher list, or nil for OpenSSL's default.
  public var openSSLCipherList: String? {
    guard !cipherSuites.isEmpty else { return nil }
    return cipherSuites.compactMap { name in WebTLSConfig.cipherSuiteNames.first { $0.key == name }?.value }.joined(separator: ":")
  }

  /// The OpenSSL group list, or nil for OpenSSL's default.
  public var openSSLGroupList: String? {
    guard !curvePreferences.isEmpty else { return nil }
    return curvePreferences.compactMap { name in WebTLSConfig.curveNames.first { $0.key == name }?.value }.joined(separator: ":")
  }
}

/// Reads and checks web configuration files.
public enum WebConfigLoader {
  static let topLevelKeys = ["tls_server_config", "basic_auth_users", "http_server_config"]
  static let tlsKeys = [
    "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
    "cipher_suites", "curve_preferences", "prefer_server_cipher_suites",
  ]
  static let httpKeys = ["headers", "http2"]
  /// Keys of the exporter-toolkit format that are not implemented here, with the reason.
  static let unsupported: [String: String] = [
    "rate_limit": "limit request rates in front of the exporter, or rely on its per-client connection limits",
    "cert": "put the certificate in a file and name it with cert_file",
    "key": "put the key in a file and name it with key_file",
    "client_ca": "put the CA certificates in a file and name it with client_ca_file",
    "client_allowed_sans": "not implemented; restrict clients with client_ca_file instead",
  ]
  /// Headers the toolkit allows, with their allowed values (nil: any value).
  static let allowedHeaders: KeyValuePairs<String, [String]?> = [
    "Strict-Transport-Security": nil,
    "X-Content-Type-Options": ["nosniff"],
    "X-Frame-Options": ["deny", "sameorigin"],
    "X-XSS-Protection": nil,
    "Content-Security-Policy": nil,
  ]

  /// Parses web configuration text; `file` names it in errors and relative paths are
  /// resolved against its directory, as the toolkit does.
  public static func parse(_ text: String, file: String) -> Result<WebConfig, ConfigErrors> {
    let root: YAMLNode
    do {
      root = try YAMLLite.parse(text)
    } catch {
      return .failure(ConfigErrors([error], file: file))
    }
    var reader = SchemaReader()
    let directory = URL(fileURLWithPath: file).deletingLastPathComponent()
    let config = decode(root, directory: directory, &reader)
    if reader.diagnostics.isEmpty { return .success(config) }
    return .failure(ConfigErrors(reader.diagnostics.sorted { $0.location < $1.location }, file: file))
  }

  /// Reads and parses the file at `path`.
  public static func load(_ path: String) -> Result<WebConfig, ConfigErrors> {
    let bytes: [UInt8]
    do {
      bytes = try FileContents.readRegularFile(path)
    } catch {
      return .failure(
        ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "cannot read the web configuration: \(error)")], file: path))
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      return .failure(ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "the file is not valid UTF-8")], file: path))
    }
    return parse(text, file: path)
  }

  /// Reports the toolkit keys this exporter does not implement; the mapping was read
  /// with them allowed, so they are not also reported as unknown.
  private static func refuseUnsupported(_ map: [String: YAMLMappingEntry], _ path: String, _ reader: inout SchemaReader) {
    for (key, entry) in map.sorted(by: { $0.value.key.location < $1.value.key.location }) {
      guard let advice = unsupported[key] else { continue }
      reader.error(entry.key.location, "'\(key)' in \(path) is not supported by netprobe_exporter: \(advice)")
    }
  }

  static func decode(_ root: YAMLNode, directory: URL, _ reader: inout SchemaReader) -> WebConfig {
    var config = WebConfig()
    if root.scalar?.isNull == true { return config }
    guard let top = reader.mapping(root, "the web configuration", allowed: topLevelKeys + ["rate_limit"]) else { return config }
    refuseUnsupported(top, "the web configuration", &reader)
    if let node = top["tls_server_config"]?.value, node.scalar?.isNull != true {
      config.tls = tls(node, directory: directory, &reader)
    }
    if let node = top["basic_auth_users"]?.value, node.scalar?.isNull != true {
      config.basicAuthUsers = users(node, &reader)
    }
    if let node = top["http_server_config"]?.value, node.scalar?.isNull != true,
      let map = reader.mapping(node, "http_server_config", allowed: httpKeys)
    {
      if let v = map["http2"]?.value, reader.boolean(v) == true {
        reader.error(v.location, "http2: true is not supported: netprobe_exporter serves HTTP/1.1 only; remove the key or set it to false")
      }
      if let v = map["headers"]?.value, v.scalar?.isNull != true { config.headers = headers(v, &reader) }
    }
    return config
  }

  static func tls(_ node: YAMLNode, directory: URL, _ reader: inout SchemaReader) -> WebTLSConfig? {
    let path = "tls_server_config"
    guard let map = reader.mapping(node, path, allowed: tlsKeys + ["cert", "key", "client_ca", "client_allowed_sans"]) else { return nil }
    refuseUnsupported(map, path, &reader)
    // OpenSSL opens these files itself: a FIFO or a device would block or never end it.
    func file(_ key: String) -> String? {
      guard let v = map[key]?.value, let text = reader.string(v) else { return nil }
      let path = text.hasPrefix("/") ? text : directory.appendingPathComponent(text).path
      if let refusal = ConfigLoader.refusal(of: path) { reader.error(v.location, "\(key): \(refusal)") }
      return path
    }
    let certFile = file("cert_file")
    let keyFile = file("key_file")
    let caFile = file("client_ca_file")
    let authType: WebTLSConfig.ClientAuthType?
    if let v = map["client_auth_type"]?.value {
      // "RequireClientCert" is the toolkit's older name, kept by it for compatibility.
      authType = v.scalar?.text == "RequireClientCert" ? .requireAnyClientCert : reader.choice(v)
    } else {
      authType = nil
    }
    // As in the toolkit, TLS is on once any of these is set (an empty mapping leaves it off).
    guard
      certFile != nil || keyFile != nil || caFile != nil || authType != nil
        || ["cert_file", "key_file", "client_ca_file", "client_auth_type"].contains(where: { map[$0] != nil })
    else { return nil }
    if map["cert_file"] == nil { reader.error(node.location, "\(path) needs cert_file: the server certificate (PEM, chain after it)") }
    if map["key_file"] == nil { reader.error(node.location, "\(path) needs key_file: the certificate's private key (PEM)") }
    var tls = WebTLSConfig(certFile: certFile ?? "", keyFile: keyFile ?? "")
    tls.location = node.location
    tls.clientAuth = authType ?? .noClientCert
    tls.clientCAFile = caFile
    if let entry = map["client_ca_file"], tls.clientAuth == .noClientCert {
      reader.error(
        entry.key.location,
        "client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type (RequireAndVerifyClientCert, VerifyClientCertIfGiven, ...)"
      )
    }
    if tls.clientAuth.verifies, map["client_ca_file"] == nil, let v = map["client_auth_type"]?.value {
      reader.error(
        v.location, "client_auth_type \(tls.clientAuth.rawValue) needs client_ca_file: the CA certificates that sign client certificates")
    }
    if let v = map["min_version"]?.value { tls.minVersion = reader.choice(v) ?? tls.minVersion }
    if let v = map["max_version"]?.value { tls.maxVersion = reader.choice(v) ?? tls.maxVersion }
    if tls.minVersion > tls.maxVersion, let v = map["min_version"]?.value ?? map["max_version"]?.value {
      reader.error(v.location, "min_version \(tls.minVersion.rawValue) is above max_version \(tls.maxVersion.rawValue)")
    }
    if let v = map["cipher_suites"]?.value, let items = reader.list(v, "\(path).cipher_suites") {
      let names = WebTLSConfig.cipherSuiteNames.map(\.key)
      for item in items {
        guard let name = reader.string(item) else { continue }
        if WebTLSConfig.tls13Suites.contains(name) {
          reader.error(
            item.location, "\(name) is a TLS 1.3 suite: those are always enabled and cannot be chosen; cipher_suites lists TLS 1.2 suites")
        } else if names.contains(name) {
          tls.cipherSuites.append(name)
        } else {
          var message =
            "unknown cipher suite '\(name)': expected a TLS 1.2 suite with Go's name, such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
          if let guess = suggestion(for: name, among: names) { message += " (did you mean '\(guess)'?)" }
          reader.error(item.location, message)
        }
      }
      if items.isEmpty { reader.error(v.location, "\(path).cipher_suites is empty: remove it to keep the defaults") }
    }
    if let v = map["curve_preferences"]?.value, let items = reader.list(v, "\(path).curve_preferences") {
      let names = WebTLSConfig.curveNames.map(\.key)
      for item in items {
        guard let name = reader.string(item) else { continue }
        if names.contains(name) {
          tls.curvePreferences.append(name)
        } else {
          var message = "unknown curve '\(name)': expected one of \(names.joined(separator: ", "))"
          if let guess = suggestion(for: name, among: names) { message += " (did you mean '\(guess)'?)" }
          reader.error(item.location, message)
        }
      }
      if items.isEmpty { reader.error(v.location, "\(path).curve_preferences is empty: remove it to keep the defaults") }
    }
    // Accepted for files written for the toolkit; Go ignores it since 1.18, and OpenSSL here
    // always prefers the server's order.
    if let v = map["prefer_server_cipher_suites"]?.value { _ = reader.boolean(v) }
    return tls
  }

  static func users(_ node: YAMLNode, _ reader: inout SchemaReader) -> [WebUser] {
    guard let entries = node.mapping else {
      reader.error(node.location, "basic_auth_users must be a mapping of user names to bcrypt hashes, got \(node.kindDescription)")
      return []
    }
    var users: [WebUser] = []
    for entry in entries {
      let name = entry.key.text
      if name.isEmpty || name.contains(":") || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
        reader.error(
          entry.key.location, "user name '\(name)' cannot be used with basic auth: it must be non-empty, without ':' or control characters")
        continue
      }
      guard let hash = reader.string(entry.value) else { continue }
      guard isBcryptHash(hash) else {
        reader.error(
          entry.value.location,
          "basic_auth_users.\(name): expected a bcrypt hash such as $2y$10$… (make one with `htpasswd -nBC 10 \(name)`); plaintext passwords are not accepted"
        )
        continue
      }
      users.append(WebUser(name: name, hash: hash))
    }
    return users
  }

  /// The closest of `names` (written in capitals, unlike the config's keys), ignoring case.
  static func suggestion(for name: String, among names: [String]) -> String? {
    let lowered = names.map { $0.lowercased() }
    guard let guess = ConfigValues.suggestion(for: name, among: lowered), let index = lowered.firstIndex(of: guess) else { return nil }
    return names[index]
  }

  /// `$2a$`, `$2b$` or `$2y$`, a cost from 04 to 31, `$`, then 53 characters of bcrypt's
  /// base-64 alphabet (22 of salt, 31 of hash).
  public static func isBcryptHash(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
      [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
      bytes[6] == UInt8(ascii: "$")
    else { return false }
    guard let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost) else { return false }
    return bytes[7...].allSatisfy { byte in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")
    }
  }

  static func headers(_ node: YAMLNode, _ reader: inout SchemaReader) -> [WebHeader] {
    guard let entries = node.mapping else {
      reader.error(node.location, "http_server_config.headers must be a mapping of header names to values, got \(node.kindDescription)")
      return []
    }
    let names = allowedHeaders.map(\.key)
    var headers: [WebHeader] = []
    for entry in entries {
      let name = entry.key.text
      guard let index = allowedHeaders.firstIndex(where: { $0.key == name }) else {
        var message = "header '\(name)' cannot be configured: expected one of \(names.joined(separator: ", "))"
        if let guess = suggestion(for: name, among: names) { message += " (did you mean '\(guess)'?)" }
        reader.error(entry.key.location, message)
        continue
      }
      guard let value = reader.string(entry.value) else { continue }
      if let allowed = allowedHeaders[index].value, !allowed.contains(value) {
        reader.error(entry.value.location, "invalid value for \(name): expected one of \(allowed.joined(separator: ", ")), got '\(value)'")
        continue
      }
      if value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) {
        reader.error(entry.value.location, "the value of \(name) contains a control character")
        continue
      }
      headers.append(WebHeader(name: name, value: value))
    }
    return headers
  }
}
