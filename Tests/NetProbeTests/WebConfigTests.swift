import Foundation
import Testing
@testable import NetProbe

@Suite struct WebConfigTests {
  static let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

  func parse(_ text: String) -> Result<WebConfig, ConfigErrors> {
    WebConfigLoader.parse(text, file: "/etc/netprobe/web.yml")
  }

  func errors(_ text: String) -> [String] {
    guard case .failure(let errors) = parse(text) else { return [] }
    return errors.lines
  }

  @Test func fullFileReadsEveryKey() throws {
    let config = try parse(
      """
      tls_server_config:
        cert_file: tls/server.crt
        key_file: /etc/netprobe/server.key
        client_auth_type: RequireAndVerifyClientCert
        client_ca_file: ca.crt
        min_version: TLS13
        max_version: TLS13
        cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
        curve_preferences: [X25519, CurveP256]
        prefer_server_cipher_suites: true
      basic_auth_users:
        alice: '\(Self.hash)'
        bob: "\(Self.hash)"
      http_server_config:
        http2: false
        headers:
          Strict-Transport-Security: max-age=31536000
          X-Frame-Options: deny

      """
    ).get()
    let tls = try #require(config.tls)
    #expect(tls.certFile == "/etc/netprobe/tls/server.crt")
    #expect(tls.keyFile == "/etc/netprobe/server.key")
    #expect(tls.clientCAFile == "/etc/netprobe/ca.crt")
    #expect(tls.clientAuth == .requireAndVerifyClientCert)
    #expect(tls.minVersion == .tls13 && tls.maxVersion == .tls13)
    #expect(tls.openSSLCipherList == "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305")
    #expect(tls.openSSLGroupList == "X25519:P-256")
    #expect(tls.location == SourceLocation(line: 2, column: 3))
    #expect(config.basicAuthUsers.map(\.name) == ["alice", "bob"])
    #expect(
      config.headers == [
        WebHeader(name: "Strict-Transport-Security", value: "max-age=31536000"),
        WebHeader(name: "X-Frame-Options", value: "deny"),
      ])
  }

  @Test func shippedExampleIsValid() throws {
    let path = packageRoot.appendingPathComponent("deploy/web-config.yml").path
    let config = try WebConfigLoader.parse(try String(contentsOfFile: path, encoding: .utf8), file: path).get()
    #expect(config.tls?.clientAuth == .requireAndVerifyClientCert)
    #expect(config.basicAuthUsers.map(\.name) == ["prometheus"])
    #expect(config.headers.count == 2)
  }

  @Test func emptyFileOrEmptySectionsServePlainHTTP() throws {
    #expect(try parse("").get() == WebConfig())
    #expect(try parse("# nothing\n").get() == WebConfig())
    let config = try parse("tls_server_config: {}\nbasic_auth_users:\nhttp_server_config:\n").get()
    #expect(config.tls == nil && config.basicAuthUsers.isEmpty)
  }

  @Test func unknownKeysAreErrorsWithSuggestions() {
    let lines = errors(
      """
      tls_server_config:
        cert_file: a
        key_fil: b
      http_server_confg: {}

      """)
    #expect(lines.contains("/etc/netprobe/web.yml:3:3: unknown key 'key_fil' in tls_server_config (did you mean 'key_file'?)"))
    #expect(
      lines.contains(
        "/etc/netprobe/web.yml:4:1: unknown key 'http_server_confg' in the web configuration (did you mean 'http_server_config'?)"))
    #expect(lines.contains("/etc/netprobe/web.yml:2:3: tls_server_config needs key_file: the certificate's private key (PEM)"))
  }

  @Test func toolkitKeysNotImplementedAreRefusedWithAReason() {
    let lines = errors(
      """
      tls_server_config:
        cert: inline
        key_file: k
        client_allowed_sans: [a]
      rate_limit: {burst: 1, interval: 1s}
      http_server_config: {http2: true}

      """)
    #expect(lines.contains { $0.hasPrefix("/etc/netprobe/web.yml:2:3: 'cert' in tls_server_config is not supported") })
    #expect(lines.contains { $0.hasPrefix("/etc/netprobe/web.yml:4:3: 'client_allowed_sans' in tls_server_config is not supported") })
    #expect(lines.contains { $0.hasPrefix("/etc/netprobe/web.yml:5:1: 'rate_limit' in the web configuration is not supported") })
    #expect(lines.contains { $0.hasPrefix("/etc/netprobe/web.yml:6:29: http2: true is not supported") })
  }

  @Test func clientAuthNeedsAndRefusesCAsAsTheToolkitDoes() {
    #expect(
      errors("tls_server_config: {cert_file: c, key_file: k, client_ca_file: ca}\n")
        == [
          "/etc/netprobe/web.yml:1:48: client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type (RequireAndVerifyClientCert, VerifyClientCertIfGiven, ...)"
        ])
    #expect(errors("tls_server_config: {cert_file: c, key_file: k, client_auth_type: VerifyClientCertIfGiven}\n").count == 1)
    let lines = errors("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireVerifiedCert}\n")
    #expect(lines.count == 1 && lines[0].contains("expected one of NoClientCert, RequestClientCert"))
    // The toolkit's older name still works.
    let old = try? parse("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireClientCert}\n").get()
    #expect(old?.tls?.clientAuth == .requireAnyClientCert)
  }

  @Test func versionsSuitesAndCurvesAreChecked() {
    let lines = errors(
      """
      tls_server_config:
        cert_file: c
        key_file: k
        min_version: TLS13
        max_version: TLS12
        cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA25]
        curve_preferences: [CurveP255]

      """)
    #expect(lines.contains("/etc/netprobe/web.yml:4:16: min_version TLS13 is above max_version TLS12"))
    #expect(lines.contains { $0.hasPrefix("/etc/netprobe/web.yml:6:19: TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite") })
    #expect(
      lines.contains {
        $0.hasPrefix("/etc/netprobe/web.yml:6:43: unknown cipher suite")
          && $0.hasSuffix("(did you mean 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'?)")
      })
    #expect(lines.contains { $0.hasPrefix("/etc/netprobe/web.yml:7:23: unknown curve 'CurveP255'") })
  }

  @Test func usersNeedBcryptHashesNeverPlaintext() {
    let lines = errors(
      """
      basic_auth_users:
        alice: hunter2
        "a:b": '\(Self.hash)'
        carol: '$2y$03$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'
        dave: '$1$saltsalt$abcdefghijklmnopqrstuv'

      """)
    #expect(lines.count == 4)
    #expect(lines[0].hasPrefix("/etc/netprobe/web.yml:2:10: basic_auth_users.alice: expected a bcrypt hash"))
    #expect(lines[1].hasPrefix("/etc/netprobe/web.yml:3:3: user name 'a:b' cannot be used"))
    #expect(WebConfigLoader.isBcryptHash(Self.hash))
    #expect(WebConfigLoader.isBcryptHash("$2b$12$" + String(repeating: "a", count: 53)))
    #expect(!WebConfigLoader.isBcryptHash("$2b$12$" + String(repeating: "a", count: 52) + "!"))
    #expect(!WebConfigLoader.isBcryptHash("$2x$10$" + String(repeating: "a", count: 53)))
  }

  @Test func headersAreTheToolkitsSetWithItsValues() {
    let lines = errors(
      """
      http_server_config:
        headers:
          X-Frame-Options: allow
          Server: netprobe
          X-Frame-Option: deny
          Content-Security-Policy: "default-src 'self'"

      """)
    #expect(
      lines == [
        "/etc/netprobe/web.yml:3:22: invalid value for X-Frame-Options: expected one of deny, sameorigin, got 'allow'",
        "/etc/netprobe/web.yml:4:5: header 'Server' cannot be configured: expected one of Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy",
        "/etc/netprobe/web.yml:5:5: header 'X-Frame-Option' cannot be configured: expected one of Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy (did you mean 'X-Frame-Options'?)",
      ])
  }

  @Test func tlsFilesMustBeRegularFilesAsEveryNamedFileIs() {
    let found = errors("tls_server_config: {cert_file: /dev/zero, key_file: /dev/null}\n")
    #expect(found.count == 2, "\(found)")
    #expect(found.first?.contains("cert_file: cannot use /dev/zero") == true, "\(found)")
    #expect(found.first?.contains("character device") == true, "\(found)")
    guard case .failure(let refused) = WebConfigLoader.load("/dev/zero") else {
      Issue.record("a device read as a web configuration")
      return
    }
    #expect(refused.lines.first?.contains("not a regular file") == true, "\(refused.lines)")
  }

  @Test func syntaxErrorsNameTheirPlace() {
    let lines = errors("tls_server_config:\n  cert_file: [a\n")
    #expect(lines.count == 1 && lines[0].hasPrefix("/etc/netprobe/web.yml:2:"))
  }
}

@Suite struct BasicAuthTests {
  // bcrypt of "s3cret" at the lowest cost, so the tests stay fast.
  static let hash = "$2b$04$s5OajQcC1QmmJWAT2EbgneDGiHskDPHX9INs7THb.P3iYijGmmjiO"

  func header(_ user: String, _ password: String) -> String {
    "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
  }

  @Test func bcryptFromLibcryptVerifies() {
    #expect(PasswordHash.verify(password: Array("s3cret".utf8), hash: Self.hash) == true)
    #expect(PasswordHash.verify(password: Array("s3cret!".utf8), hash: Self.hash) == false)
    #expect(PasswordHash.verify(password: Array("s3cret\0x".utf8), hash: Self.hash) == false)
    #expect(PasswordHash.verify(password: [], hash: Self.hash) == false)
  }

  @Test func verifiedCredentialsAreCachedAndWrongOnesToo() {
    let auth = BasicAuthenticator(users: [WebUser(name: "alice", hash: Self.hash)])
    #expect(auth.check(authorization: nil, client: nil) == .denied(reason: "missing"))
    #expect(auth.check(authorization: "Bearer x", client: nil) == .denied(reason: "missing"))
    guard case .verify(let right) = auth.check(authorization: header("alice", "s3cret"), client: nil) else {
      Issue.record("a new credential must be verified")
      return
    }
    #expect(auth.verify(right))
    #expect(auth.check(authorization: header("alice", "s3cret"), client: nil) == .allowed)
    guard case .verify(let wrong) = auth.check(authorization: header("alice", "guess"), client: nil) else {
      Issue.record("a new credential must be verified")
      return
    }
    #expect(!auth.verify(wrong))
    #expect(auth.check(authorization: header("alice", "guess"), client: nil) == .denied(reason: "wrong_credentials"))
    // An unknown user is checked against a decoy hash and never allowed.
    guard case .verify(let unknown) = auth.check(authorization: header("mallory", "s3cret"), client: nil) else {
      Issue.record("a new credential must be verified")
      return
    }
    #expect(!auth.verify(unknown))
  }

  @Test func bcryptBudgetThrottlesOneClientBeforeOthers() {
    let auth = BasicAuthenticator(
      users: [WebUser(name: "alice", hash: Self.hash)], verificationsPerSecond: 10,
      clientVerificationsPerSecond: 2)
    let guesser = IPAddress("192.0.2.1")!
    let decisions = (0..<6).map { auth.check(authorization: header("alice", "guess\($0)"), client: guesser) }
    #expect(decisions.filter { if case .verify = $0 { true } else { false } }.count == 4)
    #expect(decisions.last == .throttled)
    if case .verify = auth.check(authorization: header("alice", "s3cret"), client: IPAddress("192.0.2.2")!) {
    } else {
      Issue.record("another client still has its budget")
    }
  }

  @Test func oneCredentialArrivingTwiceIsCheckedOnceWithoutBudget() {
    let auth = BasicAuthenticator(
      users: [WebUser(name: "alice", hash: Self.hash)], verificationsPerSecond: 1,
      clientVerificationsPerSecond: 1)
    let client = IPAddress("192.0.2.1")!
    let first = auth.check(authorization: header("alice", "s3cret"), client: client)
    let second = auth.check(authorization: header("alice", "s3cret"), client: client)
    guard case .verify(let a) = first, case .verify(let b) = second else {
      Issue.record("both must wait for the one check: \(first), \(second)")
      return
    }
    #expect(auth.verify(a) && auth.verify(b))
    // The budget (1 a second) was spent once: another new credential is throttled.
    #expect(auth.check(authorization: header("alice", "other"), client: client) == .throttled)
  }

  @Test func credentialsParseAsRFC7617Says() {
    #expect(BasicAuthenticator.credentials("Basic YWxpY2U6czNjcjp0") ?? ("", []) == ("alice", Array("s3cr:t".utf8)))
    #expect(BasicAuthenticator.credentials("basic  YWxpY2U6") ?? ("", [1]) == ("alice", []))
    #expect(BasicAuthenticator.credentials("Basic !!!") == nil)
    #expect(BasicAuthenticator.credentials("Basic YWxpY2U=") == nil)
  }

  @Test func tlsRecordsGroupSmallPartsAndKeepLargeOnes() {
    let parts: [[UInt8]] = [
      Array(repeating: 1, count: 100), Array(repeating: 2, count: 16_300),
      Array(repeating: 3, count: 20_000), Array(repeating: 4, count: 10),
    ]
    let records = TLSRecords.coalesce(parts)
    #expect(records.map(\.count) == [100, 16_300, 20_000, 10])
    #expect(TLSRecords.coalesce([[1], [2, 3], [4]]) == [[1, 2, 3, 4]])
    #expect(Array(records.joined()) == Array(parts.joined()))
  }
}

/// Basic auth and extra headers over a real socket (plain HTTP: the lab tests TLS).
@Suite(.serialized) struct HTTPServerAuthLiveTests {
  @Test func everyEndpointAsksForCredentialsAndAWrongGuessIsNotARender() throws {
    let fixture = try RoutesFixture()
    let snapshot = WebSecurity.Snapshot(
      auth: BasicAuthenticator(users: [WebUser(name: "alice", hash: BasicAuthTests.hash)]),
      headers: [("X-Content-Type-Options", "nosniff")])
    let server = try HTTPServer(
      address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: fixture.routes,
      security: WebSecurity(snapshot))
    fixture.registry.register("http", server.metrics)
    server.start()
    defer { server.stop() }
    let port = server.localAddress.port
    let right = "Authorization: Basic \(Data("alice:s3cret".utf8).base64EncodedString())\r\n"
    let wrong = "Authorization: Basic \(Data("alice:nope".utf8).base64EncodedString())\r\n"
    for path in ["/metrics", "/", "/-/healthy", "/-/ready"] {
      let refused = try #require(try get(port, path))
      #expect(refused.status == 401)
      #expect(refused.headers["www-authenticate"] == "Basic realm=\"netprobe_exporter\"")
      #expect(refused.headers["x-content-type-options"] == "nosniff")
      #expect(try get(port, path, headers: wrong)?.status == 401)
      // /-/ready answers 503 here: the fixture's agent is never marked ready.
      #expect(try get(port, path, headers: right)?.status == (path == "/-/ready" ? 503 : 200))
    }
    // POST /-/reload too, on a keep-alive connection: the 401 keeps it open.
    let connection = try TestConnection(port: port)
    connection.send("POST /-/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    #expect(connection.readResponse()?.status == 401)
    connection.send("POST /-/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\(right)\r\n")
    #expect(connection.readResponse()?.status == 200)
    let metrics = try #require(try get(port, "/metrics", headers: right)).text
    #expect(metrics.contains("netprobe_http_auth_failures_total{reason=\"missing\"} 5"))
    #expect(metrics.contains("netprobe_http_auth_failures_total{reason=\"wrong_credentials\"} 4"))
    #expect(metrics.contains("netprobe_http_requests_total{handler=\"metrics\",code=\"401\"} 2"))
  }
}
