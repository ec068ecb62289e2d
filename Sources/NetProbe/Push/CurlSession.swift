import CCurl
@preconcurrency import Glibc
import FoundationEssentials

/// One HTTP request for `CurlSession`.
struct CurlRequest {
  var method: String
  var url: String
  var body: [UInt8] = []
  var headers: [String] = []
  var connectTimeout: Duration
  var totalTimeout: Duration
  var username: String?
  var password: String?
  var caFile: String?
  var certFile: String?
  var keyFile: String?
  var insecureSkipVerify = false
  /// nil: no proxy at all, whatever `http_proxy` says in the environment.
  var proxy: String?
}

/// What the server answered: the status and the start of the body (for logs).
struct CurlResponse: Equatable {
  var status: Int
  var body: [UInt8]
}

/// A transfer that did not complete, with curl's own words for why.
struct CurlFailure: Error, CustomStringConvertible {
  var code: Int32
  var message: String
  var description: String { "curl error \(code): \(message)" }
}

/// libcurl, opened and set up (curl_global_init) the first time a push needs it: an agent
/// without `push` never maps it (see CCurl).
enum Curl {
  /// Loads libcurl once; the error says why it cannot be used.
  static func load() throws(CurlFailure) {
    guard ccurl_load() == 0 else { throw CurlFailure(code: -1, message: "cannot load libcurl: \(String(cString: ccurl_load_error()))") }
  }
}

/// A libcurl easy handle owned by one thread. Reused across requests so connections are
/// kept alive; every option is reset before each request.
final class CurlSession {
  private let handle: UnsafeMutableRawPointer
  /// The most response body kept, for error logs.
  static let bodyLimit = 4096

  init() throws(CurlFailure) {
    try Curl.load()
    guard let handle = ccurl_easy_init() else { throw CurlFailure(code: -1, message: "curl_easy_init failed") }
    self.handle = handle
  }

  deinit { ccurl_easy_cleanup(handle) }

  /// Collects the response body; passed to curl's write callback through `WRITEDATA`.
  private final class Sink {
    var body: [UInt8] = []
  }

  func perform(_ request: CurlRequest) -> Result<CurlResponse, CurlFailure> {
    ccurl_easy_reset(handle)
    // The error buffer, header list and sink die with this call: the handle must not keep
    // pointers to them (curl_easy_cleanup may still write an error on a kept connection).
    defer { ccurl_easy_reset(handle) }
    let sink = Sink()
    var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    var headerList: UnsafeMutablePointer<curl_slist>?
    for header in request.headers + ["Expect:"] { headerList = ccurl_slist_append(headerList, header) }
    defer { ccurl_slist_free_all(headerList) }

    var code = CURLE_OK
    /// Applies one option and keeps the first failure.
    func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
    func setString(_ option: CURLoption, _ value: String) { set(value.withCString { ccurl_setopt_ptr(handle, option, $0) }) }

    let write: ccurl_io_fn = { data, size, count, context in
      let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
      let length = size * count
      let room = max(0, CurlSession.bodyLimit - sink.body.count)
      if room > 0, let data {
        data.withMemoryRebound(to: UInt8.self, capacity: length) { sink.body += UnsafeBufferPointer(start: $0, count: min(room, length)) }
      }
      return length
    }

    return withExtendedLifetime(sink) {
      errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
        set(ccurl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress))
        setString(CURLOPT_URL, request.url)
        // PROTOCOLS_STR needs libcurl 7.85; the host's libcurl.so.4 may be older (it is
        // opened at run time), where the deprecated bitmask does the same.
        let byName = "http,https".withCString { ccurl_setopt_ptr(handle, CURLOPT_PROTOCOLS_STR, $0) }
        set(byName == CURLE_UNKNOWN_OPTION
            ? ccurl_setopt_long(handle, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS)) : byName)
        setString(CURLOPT_CUSTOMREQUEST, request.method)
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(request.connectTimeout)))
        set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(request.totalTimeout)))
        set(ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
        set(ccurl_setopt_iofn(handle, CURLOPT_WRITEFUNCTION, write))
        set(ccurl_setopt_ptr(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque()))
        setString(CURLOPT_PROXY, request.proxy ?? "")
        if request.method != "GET" && request.method != "DELETE" {
          set(ccurl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
          set(request.body.withUnsafeBytes { ccurl_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)) })
        }
        if let username = request.username {
          setString(CURLOPT_USERNAME, username)
          setString(CURLOPT_PASSWORD, request.password ?? "")
          set(ccurl_setopt_long(handle, CURLOPT_HTTPAUTH, 1))  // CURLAUTH_BASIC
        }
        if let caFile = request.caFile { setString(CURLOPT_CAINFO, caFile) }
        if let certFile = request.certFile { setString(CURLOPT_SSLCERT, certFile) }
        if let keyFile = request.keyFile { setString(CURLOPT_SSLKEY, keyFile) }
        if request.insecureSkipVerify {
          set(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0))
          set(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0))
        }
        if code != CURLE_OK { return .failure(failure(code, errorPointer)) }
        let result = ccurl_easy_perform(handle)
        if result != CURLE_OK { return .failure(failure(result, errorPointer)) }
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(CurlResponse(status: status, body: sink.body))
      }
    }
  }

  /// curl's error buffer when it says something, else curl_easy_strerror.
  private func failure(_ code: CURLcode, _ buffer: UnsafeMutableBufferPointer<CChar>) -> CurlFailure {
    let detail = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let message = detail.isEmpty ? String(cString: ccurl_easy_strerror(code)) : detail
    return CurlFailure(code: Int32(code.rawValue), message: message)
  }

  private func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
  }
}
