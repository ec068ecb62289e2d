@preconcurrency import Glibc
import CNetShims

/// Starts a named, detached POSIX thread.
///
/// The engines' loops block in poll(2), sigwait(2) or curl, so each gets a thread of its
/// own, never a task on the cooperative pool. This wraps pthread_create directly instead
/// of Foundation's `Thread`, so the exporter needs only FoundationEssentials: full
/// Foundation and its ICU data cost about 3.7 MiB of resident memory on every host.
enum SystemThread {
  /// Runs `body` on a new thread named `name` (at most 15 bytes are kept, as the kernel
  /// stores them: `ps -L` and `top -H` show it).
  static func start(name: String, _ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(Body(name: name, run: body)).toOpaque()
    var thread = pthread_t()
    let created = pthread_create(
      &thread, nil,
      { argument in
        let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
        _ = cns_set_thread_name(body.name)
        body.run()
        return nil
      }, box)
    precondition(created == 0, "pthread_create failed: \(created)")
    pthread_detach(thread)
  }

  /// Sets the calling thread's timer slack (prctl(PR_SET_TIMERSLACK)): how much later than
  /// asked the kernel may end its timed waits, to batch wake-ups. 50 µs by default, which
  /// is five packets at 100,000/s; a pacing thread wants its wake-ups on time.
  static func setTimerSlack(nanoseconds: UInt) throws(SystemError) {
    if cns_set_timer_slack(nanoseconds) != 0 { throw SystemError("prctl(PR_SET_TIMERSLACK)", errno: errno) }
  }

  private final class Body: Sendable {
    let name: String
    let run: @Sendable () -> Void

    init(name: String, run: @escaping @Sendable () -> Void) {
      self.name = name
      self.run = run
    }
  }
}
