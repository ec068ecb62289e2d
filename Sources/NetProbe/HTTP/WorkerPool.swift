import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// A fixed set of threads that run submitted jobs in order of arrival.
///
/// The HTTP server renders responses here, off its event loop and off Swift's cooperative
/// pool (whose two threads on a 2-core host must never wait on a render or a reload).
final class WorkerPool: Sendable {
  private let jobs = Mutex<[@Sendable () -> Void]>([])
  private let available = DispatchSemaphore(value: 0)
  private let stopping = Atomic<Bool>(false)
  private let finished = DispatchSemaphore(value: 0)
  private let threadCount: Int

  init(threads: Int, name: String) {
    threadCount = threads
    for index in 0..<threads {
      SystemThread.start(name: "\(name)-\(index)") { [self] in run() }
    }
  }

  func submit(_ job: @escaping @Sendable () -> Void) {
    jobs.withLock { $0.append(job) }
    available.signal()
  }

  /// Lets the threads finish the job at hand, then stops them; waits at most `timeout`.
  func shutdown(timeout: DispatchTimeInterval = .seconds(1)) {
    stopping.store(true, ordering: .releasing)
    for _ in 0..<threadCount { available.signal() }
    // One deadline for all of them: a stuck worker must not multiply the wait.
    let deadline = DispatchTime.now() + timeout
    for _ in 0..<threadCount { _ = finished.wait(timeout: deadline) }
  }

  private func run() {
    while true {
      available.wait()
      if stopping.load(ordering: .acquiring) { break }
      let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
      job?()
    }
    finished.signal()
  }
}
