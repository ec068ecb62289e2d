import Dispatch
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
}
