import Dispatch
@preconcurrency import Glibc
import Synchronization
import Testing
@testable import NetProbe

/// The event loop every engine runs on: commands, timers in order, readiness, stop.
@Suite struct EventLoopTests {
  /// What the test engine saw, in order.
  final class Journal: Sendable {
    let events = Mutex<[String]>([])
    let done = DispatchSemaphore(value: 0)

    func record(_ event: String) { events.withLock { $0.append(event) } }
  }

  struct RecordingEngine: LoopEngine {
    enum Command: Sendable {
      case schedule(name: String, afterMilliseconds: Int64)
      case watch(Int32)
    }

    let journal: Journal

    mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<String>) {
      for command in commands {
        switch command {
        case .schedule(let name, let after):
          loop.schedule(name, at: Clocks.monotonicNanoseconds() + after * 1_000_000)
        case .watch(let descriptor):
          loop.watch(descriptor)
        }
      }
    }

    mutating func fire(_ timer: String, now: Int64, loop: inout LoopRegistrations<String>) {
      journal.record("timer \(timer)")
      if timer == "last" { journal.done.signal() }
    }

    mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<String>) {
      journal.record("ready")
      loop.unwatch(descriptor)
      journal.done.signal()
    }

    mutating func stopped() { journal.record("stopped") }
  }

  @Test func timersFireInDueOrderThenTheLoopStops() throws {
    let journal = Journal()
    let loop = try EventLoop(name: "test-loop") { RecordingEngine(journal: journal) }
    loop.post(.schedule(name: "last", afterMilliseconds: 30))
    loop.post(.schedule(name: "first", afterMilliseconds: 5))
    loop.post(.schedule(name: "second", afterMilliseconds: 5))
    #expect(journal.done.wait(timeout: .now() + 2) == .success)
    loop.stop()
    #expect(journal.events.withLock { $0 } == ["timer first", "timer second", "timer last", "stopped"])
  }

  @Test func aReadyDescriptorReachesTheEngine() throws {
    let journal = Journal()
    let event = try WakeupEvent()
    let loop = try EventLoop(name: "test-loop") { RecordingEngine(journal: journal) }
    loop.post(.watch(event.fileDescriptor))
    event.signal()
    #expect(journal.done.wait(timeout: .now() + 2) == .success)
    loop.stop()
    #expect(journal.events.withLock { $0 } == ["ready", "stopped"])
  }

  @Test func anEmptyConfigurationStartsNoThread() throws {
    let journal = Journal()
    let loop = try EventLoop(name: "test-loop") { RecordingEngine(journal: journal) }
    loop.post(.schedule(name: "never", afterMilliseconds: 0), isEmpty: true)
    loop.stop(timeout: .milliseconds(50))
    #expect(journal.events.withLock { $0 }.isEmpty, "the engine was never made, so it never stopped either")
  }

  /// What the readiness engine saw: each descriptor once, with its events.
  final class Readiness: Sendable {
    let seen = Mutex<[Int32: PollEvents]>([:])
    let done = DispatchSemaphore(value: 0)
    let expected: Int

    init(expected: Int) { self.expected = expected }
  }

  struct ReadinessEngine: LoopEngine {
    enum Command: Sendable {
      case watch([Int32], PollEvents)
      case unwatch([Int32])
      /// Signalled once the commands posted before it are handled.
      case barrier(DispatchSemaphore)
    }

    let readiness: Readiness

    mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Never>) {
      for command in commands {
        switch command {
        case .watch(let descriptors, let events): for descriptor in descriptors { loop.watch(descriptor, for: events) }
        case .unwatch(let descriptors): for descriptor in descriptors { loop.unwatch(descriptor) }
        case .barrier(let handled): handled.signal()
        }
      }
    }

    mutating func fire(_ timer: Never, now: Int64, loop: inout LoopRegistrations<Never>) {}

    mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Never>) {
      // Level-triggered: unwatched, or the descriptor would be reported at every pass.
      loop.unwatch(descriptor)
      let count = readiness.seen.withLock { seen in
        seen[descriptor] = events
        return seen.count
      }
      if count == readiness.expected { readiness.done.signal() }
    }
  }

  /// The HTTP server watches hundreds of sockets and unwatches them in any order: the poll
  /// set must keep reporting exactly the ones still watched.
  @Test func manyDescriptorsUnwatchedInAnyOrderReportOnlyTheWatched() throws {
    let events = try (0..<40).map { _ in try WakeupEvent() }
    let descriptors = events.map(\.fileDescriptor)
    let kept = descriptors.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
    let readiness = Readiness(expected: kept.count)
    let loop = try EventLoop(name: "test-loop") { ReadinessEngine(readiness: readiness) }
    loop.post(.watch(descriptors, .readable))
    loop.post(.unwatch(descriptors.enumerated().filter { $0.offset % 3 == 0 }.map(\.element).reversed()))
    // Signalled only once both are handled: the loop may handle the watch alone in one pass,
    // and descriptors ready then are rightly reported, unwatched or not.
    let handled = DispatchSemaphore(value: 0)
    loop.post(.barrier(handled))
    #expect(handled.wait(timeout: .now() + 2) == .success)
    for event in events { event.signal() }
    #expect(readiness.done.wait(timeout: .now() + 2) == .success)
    // Time for a wrongly reported descriptor to show up too.
    usleep(50_000)
    loop.stop()
    let seen = readiness.seen.withLock { $0 }
    #expect(Set(seen.keys) == Set(kept))
    #expect(seen.values.allSatisfy { $0.contains(.readable) })
  }

  @Test func writeInterestReportsRoomToWrite() throws {
    let event = try WakeupEvent()
    let readiness = Readiness(expected: 1)
    let loop = try EventLoop(name: "test-loop") { ReadinessEngine(readiness: readiness) }
    loop.post(.watch([event.fileDescriptor], .writable))
    #expect(readiness.done.wait(timeout: .now() + 2) == .success)
    loop.stop()
    let seen = readiness.seen.withLock { $0 }
    #expect(seen[event.fileDescriptor] == .writable, "an eventfd far from its limit can be written, and nothing waits to be read")
  }
}
