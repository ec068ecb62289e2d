import FoundationEssentials
import Synchronization

/// Basic auth against the bcrypt hashes of `basic_auth_users`, made cheap for the server
/// and costly only for a client that guesses.
///
/// bcrypt is slow on purpose (about 50 ms at cost 10), so it never runs on the event loop
/// and never more than `verificationsPerSecond` times a second in all, nor more than
/// `clientVerificationsPerSecond` for one client address: past that a new credential is
/// answered 429 without a check. A checked credential is remembered, right or wrong, under
/// a salted SHA-256 of user, hash and password (never the password itself), for `cacheTTL`
/// after its last use: Prometheus scraping every 15 s pays bcrypt once, and a client
/// repeating a wrong password gets its 401 at the cost of a digest. One check runs at a
/// time, as in the exporter-toolkit, so guessing takes at most one core.
public final class BasicAuthenticator: Sendable {
  /// The outcome of looking at a request's credentials on the loop.
  enum Decision: Equatable {
    case allowed
    /// 401: `reason` labels `netprobe_http_auth_failures_total`.
    case denied(reason: String)
    /// 429: the client (or everyone) used up the bcrypt budget.
    case throttled
    /// Needs bcrypt, on a worker: call `verify`.
    case verify(Pending)
  }

  /// A credential seen for the first time (or after its cache entry expired).
  struct Pending: Sendable, Equatable {
    fileprivate var key: [UInt8]
    fileprivate var hash: String
    fileprivate var known: Bool
    fileprivate var password: [UInt8]
  }

  public static let realm = "netprobe_exporter"
  public static let challenge = "Basic realm=\"\(realm)\""
  /// The reasons of `netprobe_http_auth_failures_total`.
  public static let failureReasons = ["missing", "throttled", "wrong_credentials"]

  private let users: [String: String]
  private let salt = PasswordHash.randomBytes(16)
  /// Verdicts by salted digest, each with its expiry.
  private let cache = Mutex<[[UInt8]: (verdict: Bool, expiry: ContinuousClock.Instant)]>([:])
  private let budget: Mutex<Budget>
  /// Credentials whose check is queued or running: the same credential arriving meanwhile
  /// (a client opening several connections at once) waits for that check instead of
  /// taking budget, and finds its verdict in the cache.
  private let inFlight = Mutex<Set<[UInt8]>>([])
  private let oneAtATime = Mutex<Void>(())
  private let clock = ContinuousClock()
  let cacheTTL: Duration
  static let cacheCapacity = 4096

  /// Checked when the user is unknown, so that an unknown user takes as long as a wrong
  /// password (no user enumeration by timing): a bcrypt hash of a random string.
  static let decoyHash = "$2b$10$7fYuhR/5pWGF/lDZY0v4leoBxs3LjMdmCEzKs//r8z99AdQ6b3rUW"

  /// - Parameters:
  ///   - users: user → bcrypt hash.
  ///   - verificationsPerSecond: bcrypt checks a second for all clients (burst as many).
  ///   - clientVerificationsPerSecond: for one client address (burst twice as many).
  public init(
    users: [WebUser], verificationsPerSecond: Double = 10, clientVerificationsPerSecond: Double = 2,
    cacheTTL: Duration = .seconds(60)
  ) {
    var byName: [String: String] = [:]
    for user in users { byName[user.name] = user.hash }
    self.users = byName
    self.cacheTTL = cacheTTL
    budget = Mutex(Budget(rate: verificationsPerSecond, clientRate: clientVerificationsPerSecond))
  }

  /// Looks at the Authorization header: allowed or denied from the cache, else a budget
  /// check. Cheap (a SHA-256 and a lookup): this runs on the event loop.
  func check(authorization: String?, client: IPAddress?) -> Decision {
    guard let authorization, let (user, password) = BasicAuthenticator.credentials(authorization) else {
      return .denied(reason: "missing")
    }
    let hash = users[user]
    let key = cacheKey(user: user, hash: hash ?? BasicAuthenticator.decoyHash, password: password)
    let now = clock.now
    if let verdict = cached(key, now: now) {
      return verdict ? .allowed : .denied(reason: "wrong_credentials")
    }
    let pending = Pending(key: key, hash: hash ?? BasicAuthenticator.decoyHash, known: hash != nil, password: password)
    if inFlight.withLock({ $0.contains(key) }) { return .verify(pending) }
    guard budget.withLock({ $0.take(client: client, now: now) }) else { return .throttled }
    inFlight.withLock { _ = $0.insert(key) }
    return .verify(pending)
  }

  /// Runs bcrypt (blocking, tens of milliseconds: a worker thread only) and remembers the
  /// verdict.
  func verify(_ pending: Pending) -> Bool {
    oneAtATime.withLock { _ in
      // A check of the same credential may have finished while this one waited.
      if let verdict = cached(pending.key, now: clock.now) { return verdict }
      let matches = PasswordHash.verify(password: pending.password, hash: pending.hash) ?? false
      let verdict = matches && pending.known
      remember(pending.key, verdict: verdict)
      inFlight.withLock { _ = $0.remove(pending.key) }
      return verdict
    }
  }

  private func cacheKey(user: String, hash: String, password: [UInt8]) -> [UInt8] {
    // Lengths first, so that no two (user, hash, password) give the same input.
    var input = salt
    for part in [Array(user.utf8), Array(hash.utf8), password] {
      withUnsafeBytes(of: UInt32(part.count).bigEndian) { input += $0 }
      input += part
    }
    return PasswordHash.sha256(input)
  }

  /// The cached verdict, its expiry pushed back as it is used; nil when unknown or expired.
  private func cached(_ key: [UInt8], now: ContinuousClock.Instant) -> Bool? {
    cache.withLock { entries -> Bool? in
      guard let entry = entries[key] else { return nil }
      guard entry.expiry > now else {
        entries[key] = nil
        return nil
      }
      entries[key] = (entry.verdict, now.advanced(by: cacheTTL))
      return entry.verdict
    }
  }

  private func remember(_ key: [UInt8], verdict: Bool) {
    let now = clock.now
    cache.withLock { entries in
      if entries.count >= BasicAuthenticator.cacheCapacity {
        entries = entries.filter { $0.value.expiry > now }
        // Still full of live entries: drop the one closest to expiry.
        if entries.count >= BasicAuthenticator.cacheCapacity,
          let oldest = entries.min(by: { $0.value.expiry < $1.value.expiry })?.key
        {
          entries[oldest] = nil
        }
      }
      entries[key] = (verdict, now.advanced(by: cacheTTL))
    }
  }

  /// User and password of a `Basic` Authorization header value; nil when malformed.
  static func credentials(_ header: String) -> (user: String, password: [UInt8])? {
    let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0].lowercased() == "basic",
      let decoded = Data(base64Encoded: String(parts[1]).trimmingWhitespace())
    else { return nil }
    let bytes = Array(decoded)
    guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
    guard let user = String(validating: bytes[..<colon], as: UTF8.self) else { return nil }
    return (user, Array(bytes[(colon + 1)...]))
  }

  /// Token buckets of bcrypt checks: one for everyone, one per client address.
  private struct Budget {
    var rate: Double
    var clientRate: Double
    var tokens: Double
    var last: ContinuousClock.Instant?
    var clients: [IPAddress: (tokens: Double, last: ContinuousClock.Instant)] = [:]

    init(rate: Double, clientRate: Double) {
      self.rate = rate
      self.clientRate = clientRate
      tokens = rate
    }

    static func seconds(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant) -> Double {
      let (seconds, attoseconds) = from.duration(to: to).components
      return Double(seconds) + Double(attoseconds) / 1e18
    }

    mutating func take(client: IPAddress?, now: ContinuousClock.Instant) -> Bool {
      if let last { tokens = min(rate, tokens + rate * Budget.seconds(last, now)) }
      last = now
      var clientTokens = clientRate * 2
      if let client, let entry = clients[client] {
        clientTokens = min(clientRate * 2, entry.tokens + clientRate * Budget.seconds(entry.last, now))
      }
      guard tokens >= 1, client == nil || clientTokens >= 1 else { return false }
      tokens -= 1
      if let client {
        clients[client] = (clientTokens - 1, now)
        // Forget clients whose bucket is full again, so guessing from many addresses
        // does not grow the table without bound.
        if clients.count > 1024 {
          clients = clients.filter { clientRate * Budget.seconds($0.value.last, now) + $0.value.tokens < clientRate * 2 }
        }
      }
      return true
    }
  }
}

/// What the web configuration asks of the HTTP server: TLS, basic auth, extra headers.
/// Replaced as a whole on reload; the event loop reads it per connection and per request.
public final class WebSecurity: Sendable {
  /// The parts in force at one moment.
  public struct Snapshot: Sendable {
    public var tls: TLSContext?
    public var auth: BasicAuthenticator?
    public var headers: [(name: String, value: String)]

    public init(tls: TLSContext? = nil, auth: BasicAuthenticator? = nil, headers: [(name: String, value: String)] = []) {
      self.tls = tls
      self.auth = auth
      self.headers = headers
    }

    /// Reads the certificate and key files (blocking) and builds the authenticator.
    public static func prepare(_ config: WebConfig) throws(TLSError) -> Snapshot {
      let tls = try config.tls.map { tls throws(TLSError) in try TLSContext(tls) }
      let auth = config.basicAuthUsers.isEmpty ? nil : BasicAuthenticator(users: config.basicAuthUsers)
      return Snapshot(tls: tls, auth: auth, headers: config.headers.map { ($0.name, $0.value) })
    }
  }

  /// Whether connections speak TLS: fixed at start, as the listener's scheme is.
  public let tlsEnabled: Bool
  private let current: Mutex<Snapshot>

  public init(_ snapshot: Snapshot) {
    tlsEnabled = snapshot.tls != nil
    current = Mutex(snapshot)
  }

  public var snapshot: Snapshot { current.withLock { $0 } }

  /// Puts a new snapshot in force for new connections and requests.
  public func replace(_ snapshot: Snapshot) {
    current.withLock { $0 = snapshot }
  }
}
