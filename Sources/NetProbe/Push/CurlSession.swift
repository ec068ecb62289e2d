import CCurl
@preconcurrency import Glibc
import FoundationEssentials

/// One HTTP request for `CurlSession`.
struct CurlRequest {
  var method: String
  var url: String
  /// The body, made as libcurl reads it (the exposition, gzip-compressed or not); nil
  /// for none.
  var body: (any BodyStream)?
  /// The same body again from its start, for a request libcurl must send again (a kept
  /// connection the server had closed); nil when it cannot be made again.
  var restartBody: (() -> (any BodyStream)?)?
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
public struct CurlFailure: Error, CustomStringConvertible {
  var code: Int32
  var message: String
  public var description: String { "curl error \(code): \(message)" }

  /// The code of a transfer given up because its owner is stopping (CURLE_ABORTED_BY_CALLBACK).
  static let abandonedCode = Int32(CURLE_ABORTED_BY_CALLBACK.rawValue)
}

/// libcurl, opened and set up (curl_global_init) when a configuration first has `push`: an
/// agent without it never maps the library (see CCurl).
public enum Curl {
  /// Loads libcurl once; later calls give the first call's result, so a host without
  /// libcurl.so.4 needs a restart once it is installed. The error says why it cannot be used.
  ///
  /// Call it before threads start where possible (`main` does, when the first
  /// configuration has `push`): curl_global_init is thread-safe only from libcurl 7.84. On
  /// the reload that first adds `push` it runs while the engines' threads run; none of
  /// them uses libcurl or its TLS library, which is what an older libcurl requires.
  public static func load() throws(CurlFailure) {
    guard ccurl_load() == 0 else { throw CurlFailure(code: -1, message: "cannot load libcurl: \(String(cString: ccurl_load_error()))") }
  }
}

/// A libcurl easy handle and the multi handle it runs in, owned by one thread. Reused
/// across requests so connections are kept alive; every option is reset before each request.
///
/// Transfers run through the multi interface, 100 ms of waiting at a time, so that the
/// owner can abandon one in flight (`perform(_:abandon:)`): curl_easy_perform cannot be
/// interrupted, and its progress callback may come only once a second on an idle transfer.
final class CurlSession {
  private let handle: UnsafeMutableRawPointer
  private let multi: UnsafeMutableRawPointer
  /// The most response body kept, for error logs.
  static let bodyLimit = 4096
  /// The longest wait for the transfer's sockets before `abandon` is asked again.
  static let abandonCheckMilliseconds: Int32 = 100

  init() throws(CurlFailure) {
    try Curl.load()
    guard let handle = ccurl_easy_init() else { throw CurlFailure(code: -1, message: "curl_easy_init failed") }
    guard let multi = ccurl_multi_init() else {
      ccurl_easy_cleanup(handle)
      throw CurlFailure(code: -1, message: "curl_multi_init failed")
    }
    self.handle = handle
    self.multi = multi
  }

  deinit {
    // The handle is out of the multi handle after every transfer; the multi handle holds
    // the kept connections, so it goes first.
    ccurl_multi_cleanup(multi)
    ccurl_easy_cleanup(handle)
  }

  /// One transfer's state, reached from curl's callbacks through `READDATA`, `SEEKDATA`
  /// and `WRITEDATA`: the body being sent (read straight from its parts) and the start of
  /// the answer.
  final class Transfer {
    private var body: (any BodyStream)?
    private let restart: (() -> (any BodyStream)?)?
    /// The piece being read and how far; the next is pulled when it is used up.
    private var piece: [UInt8] = []
    private var offset = 0
    /// Bytes handed to libcurl since the body's start.
    private var position = 0
    private(set) var received: [UInt8] = []

    init(body: (any BodyStream)?, restart: (() -> (any BodyStream)?)?) {
      self.body = body
      self.restart = restart
    }

    /// Copies the next bytes of the body into `destination`; 0 at the end.
    func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
      var written = 0
      while written < destination.count {
        if offset == piece.count {
          guard let next = body?.next() else {
            body = nil
            break
          }
          piece = next
          offset = 0
        }
        let length = min(piece.count - offset, destination.count - written)
        piece.withUnsafeBytes { source in
          destination.baseAddress!.advanced(by: written).copyMemory(from: source.baseAddress!.advanced(by: offset), byteCount: length)
        }
        written += length
        offset += length
      }
      position += written
      return written
    }

    /// Moves to byte `position` of the body, for a request libcurl sends again. Only the
    /// start can be reached again, by making the body anew. False otherwise.
    func seek(to target: Int) -> Bool {
      if target == position { return true }
      guard target == 0, let fresh = restart?() else { return false }
      body = fresh
      piece = []
      offset = 0
      position = 0
      return true
    }

    /// Keeps the first `limit` bytes of what the server sends.
    func receive(_ bytes: UnsafeRawBufferPointer, limit: Int) {
      let room = max(0, limit - received.count)
      if room > 0 { received += bytes.prefix(room) }
    }
  }

  /// Runs one request. `abandon` is asked before the transfer and every 100 ms during it;
  /// when it says true, the transfer is dropped at once (its connection closed) and the
  /// result is a failure with `CurlFailure.abandonedCode`.
  func perform(_ request: CurlRequest, abandon: () -> Bool = { false }) -> Result<CurlResponse, CurlFailure> {
    ccurl_easy_reset(handle)
    // The error buffer, header list and transfer die with this call: the handle must not
    // keep pointers to them (a kept connection may still write an error when it closes).
    defer { ccurl_easy_reset(handle) }
    let transfer = Transfer(body: request.body, restart: request.restartBody)
    var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    var headerList: UnsafeMutablePointer<curl_slist>?
    for header in request.headers + ["Expect:"] { headerList = ccurl_slist_append(headerList, header) }
    defer { ccurl_slist_free_all(headerList) }

    var code = CURLE_OK
    /// Applies one option and keeps the first failure.
    func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
    func setString(_ option: CURLoption, _ value: String) { set(value.withCString { ccurl_setopt_ptr(handle, option, $0) }) }

    let write: ccurl_io_fn = { data, size, count, context in
      let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
      let length = size * count
      if let data { transfer.receive(UnsafeRawBufferPointer(start: data, count: length), limit: CurlSession.bodyLimit) }
      return length
    }
    let read: ccurl_io_fn = { data, size, count, context in
      let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
      return transfer.read(into: UnsafeMutableRawBufferPointer(start: data, count: data == nil ? 0 : size * count))
    }
    let seek: ccurl_seek_fn = { context, offset, origin in
      let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
      guard origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
      return transfer.seek(to: Int(offset)) ? Int32(CURL_SEEKFUNC_OK) : Int32(CURL_SEEKFUNC_FAIL)
    }

    return withExtendedLifetime(transfer) {
      errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        set(ccurl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress))
        setString(CURLOPT_URL, request.url)
        // PROTOCOLS_STR needs libcurl 7.85; the host's libcurl.so.4 may be older (it is
        // opened at run time), where the deprecated bitmask does the same.
        let byName = "http,https".withCString { ccurl_setopt_ptr(handle, CURLOPT_PROTOCOLS_STR, $0) }
        set(
          byName == CURLE_UNKNOWN_OPTION
            ? ccurl_setopt_long(handle, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS)) : byName)
        setString(CURLOPT_CUSTOMREQUEST, request.method)
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        // Abandoning a transfer that is still resolving the gateway's name must not wait
        // for getaddrinfo (up to 30 s with dead nameservers): libcurl 7.87's QUICK_EXIT
        // leaves the resolver thread behind instead. Older libcurl: unknown, ignored.
        _ = ccurl_setopt_long(handle, CURLOPT_QUICK_EXIT, 1)
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(request.connectTimeout)))
        set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(request.totalTimeout)))
        set(ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
        set(ccurl_setopt_iofn(handle, CURLOPT_WRITEFUNCTION, write))
        set(ccurl_setopt_ptr(handle, CURLOPT_WRITEDATA, context))
        setString(CURLOPT_PROXY, request.proxy ?? "")
        if request.method != "GET" && request.method != "DELETE" {
          // An upload read through the callback as it is made (CUSTOMREQUEST names the
          // method), of unknown size: chunked, as the request's header says.
          set(ccurl_setopt_long(handle, CURLOPT_UPLOAD, 1))
          set(ccurl_setopt_iofn(handle, CURLOPT_READFUNCTION, read))
          set(ccurl_setopt_ptr(handle, CURLOPT_READDATA, context))
          set(ccurl_setopt_seekfn(handle, CURLOPT_SEEKFUNCTION, seek))
          set(ccurl_setopt_ptr(handle, CURLOPT_SEEKDATA, context))
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
        if abandon() { return .failure(Self.abandoned) }
        let result: CURLcode
        switch run(abandon) {
        case .success(let done): result = done
        case .failure(let failure): return .failure(failure)
        }
        if result != CURLE_OK { return .failure(failure(result, errorPointer)) }
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(CurlResponse(status: status, body: transfer.received))
      }
    }
  }

  private static let abandoned = CurlFailure(code: CurlFailure.abandonedCode, message: "transfer abandoned: pushing is stopping")

  /// Drives the transfer in the multi handle until it is done (its CURLcode) or abandoned.
  private func run(_ abandon: () -> Bool) -> Result<CURLcode, CurlFailure> {
    let added = ccurl_multi_add_handle(multi, handle)
    guard added == CURLM_OK else { return .failure(multiFailure("curl_multi_add_handle", added)) }
    // Removing the handle also drops an unfinished transfer and closes its connection.
    defer { _ = ccurl_multi_remove_handle(multi, handle) }
    while true {
      var running: Int32 = 0
      let performed = ccurl_multi_perform(multi, &running)
      guard performed == CURLM_OK else { return .failure(multiFailure("curl_multi_perform", performed)) }
      var result = CURLE_OK
      if ccurl_multi_done(multi, handle, &result) != 0 { return .success(result) }
      if running == 0 { return .failure(CurlFailure(code: -1, message: "the transfer ended without a result")) }
      if abandon() { return .failure(Self.abandoned) }
      let polled = ccurl_multi_poll(multi, Self.abandonCheckMilliseconds)
      guard polled == CURLM_OK else { return .failure(multiFailure("curl_multi_poll", polled)) }
    }
  }

  private func multiFailure(_ call: String, _ code: CURLMcode) -> CurlFailure {
    CurlFailure(code: -1, message: "\(call): \(String(cString: ccurl_multi_strerror(code)))")
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
