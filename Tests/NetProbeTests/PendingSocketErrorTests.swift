@preconcurrency import Glibc
import Testing
@testable import NetProbe

/// The System layer's part in the tracer's poll loop: a pending socket error keeps POLLERR
/// up with nothing on the error queue until SO_ERROR is read.
@Suite struct PendingSocketErrorTests {
  @Test func readingSOErrorClearsPOLLERR() throws {
    // A UDP socket connected to a closed port on loopback: the port unreachable sets the
    // socket's pending error without queueing anything (no IP_RECVERR).
    let closed = try Socket(family: AF_INET, type: Int32(SOCK_DGRAM.rawValue))
    try closed.bind(to: SocketAddress(IPAddress("127.0.0.1")!, port: 0))
    let address = try closed.localAddress()
    closed.close()
    let socket = try Socket(family: AF_INET, type: Int32(SOCK_DGRAM.rawValue))
    try socket.connect(to: address)
    _ = try [UInt8](repeating: 0, count: 8).withUnsafeBytes { bytes throws(SystemError) in try socket.send(bytes) }
    var entries = [pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)]
    _ = try Poller.poll(&entries, timeoutMilliseconds: 1_000)
    #expect(entries[0].revents & Int16(POLLERR) != 0)
    #expect(socket.takePendingError() == ECONNREFUSED)
    entries[0].revents = 0
    _ = try Poller.poll(&entries, timeoutMilliseconds: 0)
    #expect(entries[0].revents == 0, "nothing pending: poll sleeps again")
    #expect(socket.takePendingError() == nil)
  }
}
