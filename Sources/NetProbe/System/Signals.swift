@preconcurrency import Glibc
import FoundationEssentials

/// Delivers SIGHUP, SIGTERM and SIGINT to a closure on a thread of its own, via sigwait(2).
///
/// The signals are blocked in the process mask first, before any other thread starts, so
/// that every thread inherits the mask and only `sigwait` ever sees them; no async-signal
/// safety rules apply to the handler. SIGPIPE is ignored: writes report EPIPE instead.
public enum SignalWatcher {
  public enum Signal: Sendable, Equatable, CustomStringConvertible {
    case hangup, terminate, interrupt

    public var description: String {
      switch self {
      case .hangup: "SIGHUP"
      case .terminate: "SIGTERM"
      case .interrupt: "SIGINT"
      }
    }
  }

  /// Blocks the signals in the calling thread. Call first thing in `main`.
  public static func blockSignals() {
    var set = watchedSet()
    pthread_sigmask(SIG_BLOCK, &set, nil)
    signal(SIGPIPE, SIG_IGN)
  }

  /// Starts the watching thread; `handler` runs on it, once per signal received.
  public static func start(_ handler: @escaping @Sendable (Signal) -> Void) {
    SystemThread.start(name: "signals") {
      var set = watchedSet()
      while true {
        var number: Int32 = 0
        guard sigwait(&set, &number) == 0 else { continue }
        switch number {
        case SIGHUP: handler(.hangup)
        case SIGTERM: handler(.terminate)
        case SIGINT: handler(.interrupt)
        default: continue
        }
      }
    }
  }

  private static func watchedSet() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGHUP)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    return set
  }
}
