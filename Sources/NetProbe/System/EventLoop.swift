import Dispatch
@preconcurrency import Glibc
import Synchronization

/// An engine's protocol logic, as its event loop drives it: what to do with a command, a
/// due timer and a ready socket. Every call comes on the loop's thread, and the engine value
/// is made on that thread and never leaves it, so its state needs no lock and the engine
/// need not be `Sendable`.
protocol LoopEngine: SendableMetatype {
  /// What other threads send the engine: a target added, a new configuration.
  associatedtype Command: Sendable
  /// What the engine's timers carry back to it when they come due.
  associatedtype Timer

  /// The commands posted since the last pass, oldest first.
  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>)
  /// `timer` came due; `now` is the monotonic time (ns) the loop checked the timers at.
  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>)
  /// A watched descriptor has `events`.
  mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>)
  /// Once per pass, after the due timers and before the wait: work that follows from what
  /// the pass changed (rounds an answer completed, absences to log).
  mutating func endOfPass(now: Int64, loop: inout LoopRegistrations<Timer>)
  /// The loop is ending: undo what closing a descriptor does not (state others read).
  mutating func stopped()
}

extension LoopEngine {
  mutating func endOfPass(now: Int64, loop: inout LoopRegistrations<Timer>) {}
  mutating func stopped() {}
}

/// The events poll(2) reports for a descriptor (`pollfd.revents`).
struct PollEvents: OptionSet, Sendable {
  let rawValue: Int16

  /// Data to read (POLLIN).
  static let readable = PollEvents(rawValue: Int16(POLLIN))
  /// Room in the send queue (POLLOUT): a writer with output waiting watches for it.
  static let writable = PollEvents(rawValue: Int16(POLLOUT))
  /// An error is pending, or queued on the socket's error queue (POLLERR).
  static let error = PollEvents(rawValue: Int16(POLLERR))
}

/// How finely the loop times its waits.
enum WaitPrecision: Sendable {
  /// poll(2)'s whole milliseconds, rounded up so the loop never wakes early and spins:
  /// work due in the same millisecond is done in one wake-up. The ping loops pace their
  /// sends on this 1 ms grid: waking for every send cost 70 % more CPU per probe at 10,000
  /// targets (0.020 against 0.012 CPU-seconds per 1,000 probes, make bench).
  case milliseconds
  /// ppoll(2)'s nanoseconds, for a sender whose packets are due every few microseconds.
  case nanoseconds
}

/// What an engine has registered with its loop: the descriptors to watch and the timers to
/// fire. Engines change it from their callbacks; the loop reads it between them.
struct LoopRegistrations<Timer> {
  private struct Scheduled: Comparable {
    var at: Int64
    /// Timers due at the same time fire in the order they were scheduled.
    var order: UInt64
    var timer: Timer

    @inline(__always)
    static func < (a: Scheduled, b: Scheduled) -> Bool { a.at < b.at || (a.at == b.at && a.order < b.order) }
    /// Equal when due at the same time in the same order: the heap's ordering only.
    static func == (a: Scheduled, b: Scheduled) -> Bool { a.at == b.at && a.order == b.order }
  }

  /// The poll set: the wake-up event first, then the watched descriptors.
  fileprivate var entries: [pollfd]
  /// Where each watched descriptor sits in `entries`: the HTTP server watches hundreds of
  /// connections and changes their interest with every request, which a search through
  /// the poll set would make quadratic.
  private var entryIndex: [Int32: Int] = [:]
  private var timers = MinHeap<Scheduled>()
  private var scheduled: UInt64 = 0
  /// A wake-up asked for this pass only (`wake(by:)`).
  fileprivate var wakeBy: Int64?

  fileprivate init(wakeup: Int32) {
    entries = [pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
  }

  /// Watches `descriptor` for `events` (readable by default; POLLERR and POLLHUP are
  /// always reported), until `unwatch`; watching it again changes the events.
  mutating func watch(_ descriptor: Int32, for events: PollEvents = .readable) {
    if let index = entryIndex[descriptor] {
      entries[index].events = events.rawValue
    } else {
      entryIndex[descriptor] = entries.count
      entries.append(pollfd(fd: descriptor, events: events.rawValue, revents: 0))
    }
  }

  /// Stops watching `descriptor`; call it before the descriptor is closed. The last entry
  /// takes its place: the order of the poll set means nothing.
  mutating func unwatch(_ descriptor: Int32) {
    guard let index = entryIndex.removeValue(forKey: descriptor) else { return }
    let last = entries.count - 1
    if index != last {
      entries[index] = entries[last]
      entryIndex[entries[index].fd] = index
    }
    entries.removeLast()
  }

  /// Fires `timer` once `at` (monotonic ns) has passed. A timer is not cancelled: the
  /// engine ignores one that no longer means anything when it comes due.
  mutating func schedule(_ timer: Timer, at: Int64) {
    scheduled &+= 1
    timers.insert(Scheduled(at: at, order: scheduled, timer: timer))
  }

  /// Ends this pass's wait no later than `deadline`, for work the engine does at the end of
  /// every pass (`LoopEngine.endOfPass`) rather than on a timer.
  mutating func wake(by deadline: Int64) {
    wakeBy = min(wakeBy ?? deadline, deadline)
  }

  fileprivate var nextTimer: Int64? { timers.min?.at }

  fileprivate mutating func popDue(now: Int64) -> Timer? {
    guard let next = timers.min, next.at <= now else { return nil }
    timers.popMin()
    return next.timer
  }

  fileprivate mutating func clearReadiness() {
    for index in entries.indices { entries[index].revents = 0 }
  }
}

/// The event loop every engine runs on: one type, one thread per engine (each ping family,
/// the path tracer, the multicast receiver, the querier watch, the beacon sender, DNS, the
/// target files' watch, the HTTP server), so that a busy engine never delays another's
/// timing and each waits with the precision it needs. The loop owns the poll set, the
/// timers (a deadline heap), the wake-up event, the commands other threads post and the
/// start/stop handshake; the engine keeps only its protocol logic (`LoopEngine`). For the
/// HTTP server (`HTTPServerEngine`) the watched descriptors are its connections and the
/// commands are the responses its workers finished.
///
/// A pass: the posted commands, the due timers, the engine's end of pass, one wait in
/// poll(2) for the next timer or a descriptor, the ready descriptors, then the timers that
/// came due meanwhile — so a reply that arrived before its probe's deadline is read before
/// the deadline is checked.
final class EventLoop<Engine: LoopEngine>: Sendable {
  private let wakeup: WakeupEvent
  private let inbox = Mutex<[Engine.Command]>([])
  private let thread: DedicatedThread
  private let precision: WaitPrecision
  private let makeEngine: @Sendable (EventLoop<Engine>) -> Engine

  /// The longest wait without a timer: a bound, should a wake-up ever be lost.
  private static var idleWaitNanoseconds: Int64 { 1_000_000_000 }

  /// - Parameter makeEngine: makes the engine, on the loop's thread, when it starts.
  convenience init(name: String, precision: WaitPrecision = .milliseconds, makeEngine: @escaping @Sendable () -> Engine) throws(SystemError)
  {
    try self.init(name: name, precision: precision, makeEngineOnLoop: { _ in makeEngine() })
  }

  /// - Parameter makeEngineOnLoop: makes the engine, on the loop's thread, when it starts,
  ///   and hands it the loop, for an engine whose helper threads post back to it (the HTTP
  ///   server's workers post the responses they built).
  init(name: String, precision: WaitPrecision = .milliseconds, makeEngineOnLoop: @escaping @Sendable (EventLoop<Engine>) -> Engine)
    throws(SystemError)
  {
    self.precision = precision
    self.makeEngine = makeEngineOnLoop
    wakeup = try WakeupEvent()
    thread = DedicatedThread(name: name)
  }

  /// Starts the thread unless it runs already.
  func start() {
    thread.start { [self] in run() }
  }

  /// Queues a command, starts the thread if needed and wakes it: the command is handled
  /// within one pass.
  func post(_ command: Engine.Command) {
    inbox.withLock { $0.append(command) }
    start()
    wakeup.signal()
  }

  /// Queues a configuration's worth of work, except that an empty one never starts the
  /// thread: a configuration with nothing for an engine costs no thread, and once started
  /// the thread follows every change, down to nothing.
  func post(_ command: Engine.Command, isEmpty: Bool) {
    if isEmpty && !thread.isStarted { return }
    post(command)
  }

  /// Asks the loop to end and waits for it, at most `timeout`.
  func stop(timeout: DispatchTimeInterval = .milliseconds(900)) {
    thread.requestStop()
    wakeup.signal()
    _ = thread.waitUntilFinished(timeout: timeout)
  }

  private func run() {
    var engine = makeEngine(self)
    var loop = LoopRegistrations<Engine.Timer>(wakeup: wakeup.fileDescriptor)
    var ready: [(descriptor: Int32, events: PollEvents)] = []
    while !thread.isStopping {
      let commands = inbox.withLock { list in
        defer { list.removeAll() }
        return list
      }
      if !commands.isEmpty { engine.handle(commands, loop: &loop) }
      let now = Clocks.monotonicNanoseconds()
      fireDue(&engine, &loop, now: now)
      engine.endOfPass(now: Clocks.monotonicNanoseconds(), loop: &loop)
      wait(&loop)
      // Collected first: the engine may watch or unwatch descriptors as it reads.
      ready.removeAll(keepingCapacity: true)
      for entry in loop.entries.dropFirst() where entry.revents != 0 {
        ready.append((entry.fd, PollEvents(rawValue: entry.revents)))
      }
      for (descriptor, events) in ready { engine.ready(descriptor, events: events, loop: &loop) }
      fireDue(&engine, &loop, now: Clocks.monotonicNanoseconds())
    }
    engine.stopped()
  }

  private func fireDue(_ engine: inout Engine, _ loop: inout LoopRegistrations<Engine.Timer>, now: Int64) {
    // A stop is seen between two timers: a pass of slow work (DNS lookups) ends early.
    while !thread.isStopping, let timer = loop.popDue(now: now) {
      engine.fire(timer, now: now, loop: &loop)
    }
  }

  /// Waits in poll(2) until the next timer, the pass's wake-up deadline, a watched
  /// descriptor or a posted command.
  private func wait(_ loop: inout LoopRegistrations<Engine.Timer>) {
    let now = Clocks.monotonicNanoseconds()
    var next = now + Self.idleWaitNanoseconds
    if let timer = loop.nextTimer { next = min(next, timer) }
    if let deadline = loop.wakeBy { next = min(next, deadline) }
    loop.wakeBy = nil
    loop.clearReadiness()
    let waitNanoseconds = max(0, next - now)
    switch precision {
    case .milliseconds:
      let timeout = Int32((waitNanoseconds + 999_999) / 1_000_000)
      _ = try? Poller.poll(&loop.entries, timeoutMilliseconds: timeout)
    case .nanoseconds:
      _ = try? Poller.poll(&loop.entries, timeoutNanoseconds: waitNanoseconds)
    }
    if loop.entries[0].revents != 0 { wakeup.drain() }
  }
}

/// The start / stop / finished handshake of a thread of its own: started at most once,
/// asked to stop by a flag its body checks, and waited for with a bound.
final class DedicatedThread: Sendable {
  let name: String
  private let started = Atomic<Bool>(false)
  private let stopping = Atomic<Bool>(false)
  private let finished = DispatchSemaphore(value: 0)

  init(name: String) { self.name = name }

  var isStarted: Bool { started.load(ordering: .acquiring) }
  var isStopping: Bool { stopping.load(ordering: .acquiring) }

  /// Runs `body` on a new thread, unless one was started already.
  func start(_ body: @escaping @Sendable () -> Void) {
    guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
    SystemThread.start(name: name) { [self] in
      body()
      finished.signal()
    }
  }

  /// Sets the flag the body checks; the caller wakes it if it sleeps.
  func requestStop() {
    stopping.store(true, ordering: .releasing)
  }

  /// Waits for the body to return, at most `timeout`; true when it did (or never started).
  func waitUntilFinished(timeout: DispatchTimeInterval) -> Bool {
    waitUntilFinished(until: .now() + timeout)
  }

  /// The same until `deadline`: several threads stopped together share one deadline, so
  /// a stuck one does not multiply the wait.
  func waitUntilFinished(until deadline: DispatchTime) -> Bool {
    guard isStarted else { return true }
    return finished.wait(timeout: deadline) == .success
  }
}
