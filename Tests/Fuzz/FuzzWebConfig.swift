import Foundation
import NetProbe

/// Used when deploy/web-config.yml is not reachable from the current directory.
private let builtInWebSeeds: [String] = [
  "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
  "tls_server_config: {cert_file: c, key_file: k, min_version: TLS13, cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], curve_preferences: [X25519]}\n",
  "basic_auth_users:\n  alice: '$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'\n  'b:c': x\n",
  "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=1\n",
  "rate_limit: {burst: 1}\ntls_server_config:\n  cert: x\n  client_allowed_sans: [a]\n",
]

/// The web configuration's words, spliced into inputs to reach the rarer branches.
private let webTokens = [
  "tls_server_config:\n", "  cert_file: ", "  key_file: ", "  client_ca_file: ", "client_auth_type: ",
  "RequireAndVerifyClientCert", "VerifyClientCertIfGiven", "RequireClientCert", "NoClientCert", "min_version: ",
  "max_version: ", "TLS10", "TLS13", "cipher_suites: [", "TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA",
  "curve_preferences: [", "X25519", "CurveP521", "basic_auth_users:\n", "$2y$10$", "$2b$04$", "$2a$31$",
  "http_server_config:\n", "headers:\n", "X-Frame-Options: ", "sameorigin", "http2: ", "true", "~", ": ", "- ",
  "\n", "  ", "{", "}", "[", "]", "'", "\"", "#", "\u{0}", "\r", "é",
]

/// Feeds random and mutated web configuration files to `WebConfigLoader.parse` (text only:
/// it opens no certificate). A crash or a hang is the failure; every refusal must say why.
func fuzzWebConfig(iterations: Int, seed: UInt64) -> Int {
  var mutator = Mutator(seed: seed, dictionary: webTokens)
  let seeds = webSeedFiles().map { Array($0.utf8) }
  var valid = 0
  for index in 0..<iterations {
    let input =
      index % 2 == 0
      ? mutator.randomInput(maxLength: 256)
      : mutator.mutate(seeds[(index / 2) % seeds.count])
    switch WebConfigLoader.parse(String(decoding: input, as: UTF8.self), file: "/fuzz/web.yml") {
    case .success(let config):
      valid += 1
      _ = config.summary
      _ = config.tls?.openSSLCipherList
      _ = config.tls?.openSSLGroupList
      for user in config.basicAuthUsers { precondition(WebConfigLoader.isBcryptHash(user.hash), "a non-bcrypt hash accepted") }
    case .failure(let errors):
      precondition(!errors.diagnostics.isEmpty, "a failure without a message")
    }
  }
  print("web: \(iterations) inputs from \(seeds.count) seeds, \(valid) valid web configurations, no crash (seed \(seed))")
  return iterations
}

private func webSeedFiles() -> [String] {
  let data = FileManager.default.contents(atPath: "deploy/web-config.yml")
  return data.map { [String(decoding: $0, as: UTF8.self)] + builtInWebSeeds } ?? builtInWebSeeds
}
