import CTLS

/// A TLS failure: what was being done and OpenSSL's reason, for people.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// An OpenSSL server context (SSL_CTX) built from `tls_server_config`: the certificate and
/// key, the client CA, the versions, suites and groups. Immutable once built; a reload
/// builds a new one, and connections already open keep theirs (OpenSSL counts references).
public final class TLSContext: @unchecked Sendable {
  // @unchecked: the context is never changed after init, and OpenSSL's SSL_CTX may be used
  // from several threads to create sessions.
  fileprivate let pointer: OpaquePointer

  /// Reads the files (blocking: never call it on the event loop) and checks that the key
  /// matches the certificate. Wraps `ctls_context_new`.
  public init(_ config: WebTLSConfig) throws(TLSError) {
    let authCode: Int32 =
      switch config.clientAuth {
      case .noClientCert: Int32(CTLS_NO_CLIENT_CERT)
      case .requestClientCert: Int32(CTLS_REQUEST_CLIENT_CERT)
      case .requireAnyClientCert: Int32(CTLS_REQUIRE_ANY_CLIENT_CERT)
      case .verifyClientCertIfGiven: Int32(CTLS_VERIFY_CLIENT_CERT_IF_GIVEN)
      case .requireAndVerifyClientCert: Int32(CTLS_REQUIRE_AND_VERIFY_CLIENT_CERT)
      }
    var error = [CChar](repeating: 0, count: 1024)
    let made = error.withUnsafeMutableBufferPointer { buffer in
      withOptionalCString(config.clientCAFile) { ca in
        withOptionalCString(config.openSSLCipherList) { ciphers in
          withOptionalCString(config.openSSLGroupList) { groups in
            ctls_context_new(
              config.certFile, config.keyFile, ca, authCode, Int32(config.minVersion.number),
              Int32(config.maxVersion.number), ciphers, groups, buffer.baseAddress, buffer.count)
          }
        }
      }
    }
    guard let made else { throw TLSError(TLSSession.text(error)) }
    pointer = made
  }

  deinit { ctls_context_free(pointer) }
}

private func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
  guard let text else { return body(nil) }
  return text.withCString { body($0) }
}

/// One TLS connection over an accepted non-blocking socket, driven by the event loop.
///
/// OpenSSL reads and writes the descriptor itself (recv/send through its socket BIO);
/// SIGPIPE is ignored by the process (`SignalWatcher`), so a vanished peer is an EPIPE here.
/// Owned by the loop thread alone.
final class TLSSession {
  private let pointer: OpaquePointer
  /// The last failure's message.
  private(set) var lastError = ""
  private var error = [CChar](repeating: 0, count: 512)

  /// What a call needs before it can go on.
  enum Progress: Equatable {
    case done
    case wantRead
    case wantWrite
    case closed
    /// A plain-text HTTP request arrived where a ClientHello was expected.
    case plainHTTP
    case failed
  }

  /// Wraps `ctls_session_new` (SSL_new, SSL_set_fd). Nil when OpenSSL is out of memory.
  init?(context: TLSContext, fileDescriptor: Int32) {
    guard let made = ctls_session_new(context.pointer, fileDescriptor) else { return nil }
    pointer = made
  }

  deinit { ctls_session_free(pointer) }

  static func text(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
  }

  private func progress(_ code: Int32) -> Progress {
    switch code {
    case Int32(CTLS_WANT_READ): return .wantRead
    case Int32(CTLS_WANT_WRITE): return .wantWrite
    case Int32(CTLS_CLOSED): return .closed
    case Int32(CTLS_PLAIN_HTTP): return .plainHTTP
    default:
      lastError = TLSSession.text(error)
      return .failed
    }
  }

  /// Advances the handshake (SSL_do_handshake).
  func handshake() -> Progress {
    let code = error.withUnsafeMutableBufferPointer { ctls_handshake(pointer, $0.baseAddress, $0.count) }
    return code == 1 ? .done : progress(code)
  }

  /// Reads decrypted bytes (SSL_read): the byte count, or why none.
  func read(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, progress: Progress) {
    let pointer = self.pointer
    let code = error.withUnsafeMutableBufferPointer { message in
      ctls_read(pointer, buffer.baseAddress, Int32(clamping: buffer.count), message.baseAddress, message.count)
    }
    return code > 0 ? (Int(code), .done) : (0, progress(code))
  }

  /// Encrypts and sends (SSL_write): the plain bytes taken, or why none. After a want,
  /// call again with the same bytes.
  func write(_ bytes: UnsafeRawBufferPointer) -> (count: Int, progress: Progress) {
    guard bytes.count > 0 else { return (0, .done) }
    let pointer = self.pointer
    let code = error.withUnsafeMutableBufferPointer { message in
      ctls_write(pointer, bytes.baseAddress, Int32(clamping: bytes.count), message.baseAddress, message.count)
    }
    return code > 0 ? (Int(code), .done) : (0, progress(code))
  }

  /// Decrypted bytes buffered in OpenSSL, which poll(2) cannot report.
  var pending: Int { Int(ctls_pending(pointer)) }

  /// Sends close_notify, best effort and without waiting.
  func shutdown() { ctls_shutdown(pointer) }
}

/// bcrypt and the digests basic auth needs, from libcrypt and OpenSSL.
public enum PasswordHash {
  /// Whether `password` matches the bcrypt `hash`; nil when the hash is not one crypt(3)
  /// knows. Costs tens of milliseconds at cost 10, on purpose: never call it on the loop.
  /// Wraps `crypt_r(3)` with a constant-time comparison.
  public static func verify(password: [UInt8], hash: String) -> Bool? {
    // Never an empty buffer without an address: one NUL byte, counted as no byte.
    let bytes = password.map { CChar(bitPattern: $0) } + [0]
    let result = bytes.withUnsafeBufferPointer { buffer in
      hash.withCString { ctls_crypt_verify($0, buffer.baseAddress!, buffer.count - 1) }
    }
    return result < 0 ? nil : result == 1
  }

  /// SHA-256 of `bytes`.
  public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    _ = bytes.withUnsafeBytes { input in
      digest.withUnsafeMutableBufferPointer { ctls_sha256(input.baseAddress, input.count, $0.baseAddress) }
    }
    return digest
  }

  /// `count` random bytes from OpenSSL's generator.
  public static func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    _ = bytes.withUnsafeMutableBytes { ctls_random($0.baseAddress, $0.count) }
    return bytes
  }
}
