import Logging

/// The path tracer's UDP sockets, opened on first use and shared by every target whose
/// probes need the same options (as `ICMPSocketPool` does for ICMP). A socket keeps its
/// source port for its life, so a target's flow stays one 5-tuple round after round.
///
/// UDP sockets need no privilege; one that will not open (a source address the host does
/// not have, an interface that does not exist) is logged once and tried again after a
/// minute. Confined to the tracer's thread.
struct UDPProbeSocketPool {
  struct Key: Hashable {
    var family: IPAddress.Family
    var options: ICMPSocketOptions
  }

  /// A socket, or why there is none.
  enum Lookup {
    /// `opened`: new this call, so the loop should watch it.
    case ready(UDPProbeSocket, opened: Bool)
    case unavailable(SystemError)
  }

  private let logger: Logger
  private var sockets: [Key: UDPProbeSocket] = [:]
  private var failures: [Key: (error: SystemError, retryAt: Int64)] = [:]

  init(logger: Logger) { self.logger = logger }

  /// The socket for probes to `family` with `options`, opening it if needed.
  mutating func socket(family: IPAddress.Family, options: ICMPSocketOptions, now: Int64) -> Lookup {
    let key = Key(family: family, options: options)
    if let socket = sockets[key] { return .ready(socket, opened: false) }
    if let failure = failures[key], failure.retryAt > now { return .unavailable(failure.error) }
    do {
      let socket = try UDPProbeSocket(family: family, options: options)
      sockets[key] = socket
      failures[key] = nil
      return .ready(socket, opened: true)
    } catch {
      if failures[key] == nil {
        logger.error(
          "cannot open a UDP socket for trace probes; targets that need it are not traced",
          metadata: ["family": "\(family.rawValue)", "error": "\(error)"])
      }
      failures[key] = (error, now + ICMPSocketPool.retryNanoseconds)
      return .unavailable(error)
    }
  }
}
