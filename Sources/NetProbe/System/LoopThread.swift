import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// A thread that runs one event loop and is fed commands by other threads: the ping
/// loops, the path tracer and the multicast receiver all have this shape.
///
/// The loop polls `wakeup` with its sockets; `post` queues a command and signals it, so a
/// command is seen within one poll. The thread starts on the first `start` or `post`.
final class LoopThread<Command: Sendable>: Sendable {
  let name: String
  let wakeup: WakeupEvent
  private let inbox = Mutex<[Command]>([])
  private let stopping = Atomic<Bool>(false)
  private let started = Atomic<Bool>(false)
  private let finished = DispatchSemaphore(value: 0)
  private let body: @Sendable (LoopThread<Command>) -> Void

  /// - Parameter body: the loop; it returns once `isStopping` is true.
  init(name: String, body: @escaping @Sendable (LoopThread<Command>) -> Void) throws(SystemError) {
    self.name = name
    self.body = body
    wakeup = try WakeupEvent()
  }

  /// Starts the thread unless it runs already.
  func start() {
    guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
    SystemThread.start(name: name) { [self] in
      body(self)
      finished.signal()
    }
  }

  /// Queues a command, starts the thread if needed and wakes it.
  func post(_ command: Command) {
    inbox.withLock { $0.append(command) }
    start()
    wakeup.signal()
  }

  /// Queues a configuration's worth of work, except that an empty one never starts the
  /// thread: a configuration with nothing for an engine costs no thread, and once started
  /// the thread follows every change, down to nothing.
  func post(_ command: Command, isEmpty: Bool) {
    if isEmpty && !started.load(ordering: .acquiring) { return }
    post(command)
  }

  /// The commands queued since the last call, in order.
  func takeCommands() -> [Command] {
    inbox.withLock { list in
      defer { list.removeAll() }
      return list
    }
  }

  var isStopping: Bool { stopping.load(ordering: .acquiring) }

  /// Asks the loop to end and waits for it, at most `timeout`.
  func stop(timeout: DispatchTimeInterval = .milliseconds(900)) {
    stopping.store(true, ordering: .releasing)
    wakeup.signal()
    if started.load(ordering: .acquiring) { _ = finished.wait(timeout: .now() + timeout) }
  }
}
