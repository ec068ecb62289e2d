import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// A fixed set of threads that run submitted jobs, urgent jobs first, the others fairly
/// between clients.
///
/// The HTTP server renders responses here, off its event loop and off Swift's cooperative
/// pool (whose two threads on a 2-core host must never wait on a render or a reload).
/// One thread takes urgent jobs only: with every other thread rendering a large scrape
/// (a client asking for dozens of them at once), a health check would otherwise wait
/// behind them for seconds; this way it waits at most for another small response. Among the other jobs the
/// oldest of the client with the fewest jobs running goes first, and one client runs at
/// most half the general threads at once: one client's burst of scrapes neither queues
/// Prometheus' scrape behind it nor takes every core from it.
final class WorkerPool: Sendable {
  private struct Job {
    var client: IPAddress?
    var work: @Sendable () -> Void
  }
  private struct Queues {
    var urgent: [Job] = []
    var normal: [Job] = []
    /// Jobs running now, by client.
    var running: [IPAddress?: Int] = [:]
    /// Jobs one client (other than nil) may run at once.
    let perClient: Int

    init(perClient: Int) { self.perClient = perClient }

    /// The next job for a thread: the oldest urgent one, else (unless `urgentOnly`) the
    /// oldest of the client with the fewest running, if that client is below its share.
    mutating func take(urgentOnly: Bool) -> Job? {
      let job: Job
      if !urgent.isEmpty {
        job = urgent.removeFirst()
      } else if urgentOnly {
        return nil
      } else {
        var best: Int?
        var bestRunning = Int.max
        for index in normal.indices {
          let client = normal[index].client
          let count = running[client, default: 0]
          if client != nil && count >= perClient { continue }
          if count < bestRunning {
            best = index
            bestRunning = count
          }
        }
        guard let best else { return nil }
        job = normal.remove(at: best)
      }
      running[job.client, default: 0] += 1
      return job
    }

    mutating func finished(_ job: Job) {
      let left = running[job.client, default: 1] - 1
      running[job.client] = left > 0 ? left : nil
    }
  }
  private let jobs: Mutex<Queues>
  /// Signalled once per job of either kind: wakes a general thread.
  private let available = DispatchSemaphore(value: 0)
  /// Signalled once per urgent job: wakes the thread kept for them.
  private let urgentAvailable = DispatchSemaphore(value: 0)
  /// The urgent thread first, then the general ones; each has the start / stop / finished
  /// handshake every thread of the exporter has.
  private let threads: [DedicatedThread]

  /// `threads`: at least 2, one of which is kept for urgent jobs.
  init(threads count: Int, name: String) {
    let count = max(2, count)
    jobs = Mutex(Queues(perClient: max(1, (count - 1) / 2)))
    threads = [DedicatedThread(name: "\(name)-urgent")] + (0..<(count - 1)).map { DedicatedThread(name: "\(name)-\($0)") }
    for (index, thread) in threads.enumerated() {
      thread.start { [self] in run(urgentOnly: index == 0, thread: thread) }
    }
  }

  /// Queues a job; `urgent` ones (small responses) are taken before any other, the
  /// others fairly between `client`s.
  func submit(urgent: Bool = false, client: IPAddress? = nil, _ work: @escaping @Sendable () -> Void) {
    let job = Job(client: client, work: work)
    jobs.withLock { queues in
      if urgent {
        queues.urgent.append(job)
      } else {
        queues.normal.append(job)
      }
    }
    if urgent { urgentAvailable.signal() }
    available.signal()
  }

  /// Lets the threads finish the job at hand, then stops them; waits at most `timeout`.
  func shutdown(timeout: DispatchTimeInterval = .seconds(1)) {
    for thread in threads { thread.requestStop() }
    for _ in threads {
      available.signal()
      urgentAvailable.signal()
    }
    // One deadline for all of them: a stuck worker must not multiply the wait.
    let deadline = DispatchTime.now() + timeout
    for thread in threads { _ = thread.waitUntilFinished(until: deadline) }
  }

  /// A general thread wakes once per job and takes the oldest urgent job, else the oldest
  /// other one, else nothing (the urgent thread took it). Every job adds one general
  /// wake-up, so none is left waiting while a general thread sleeps.
  private func run(urgentOnly: Bool, thread: DedicatedThread) {
    let semaphore = urgentOnly ? urgentAvailable : available
    while true {
      semaphore.wait()
      if thread.isStopping { break }
      guard let job = jobs.withLock({ $0.take(urgentOnly: urgentOnly) }) else { continue }
      job.work()
      // A job held back by its client's share may be runnable now: wake a thread for it.
      let waiting = jobs.withLock { queues in
        queues.finished(job)
        return !queues.normal.isEmpty
      }
      if waiting { available.signal() }
    }
  }
}
