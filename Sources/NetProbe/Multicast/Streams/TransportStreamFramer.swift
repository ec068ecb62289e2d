/// Finds MPEG transport packets in a stream's datagrams read as one byte stream, the way
/// analysers (tsduck, VLC) and set-top boxes read TS over UDP: ffmpeg's default `udp://`
/// output sends 1,472-byte datagrams, so packets straddle datagrams, and a datagram
/// boundary need not be a packet boundary.
///
/// The framer locks onto the sync byte (0x47) and then expects one every packet:
///
/// - **Locking.** Three sync bytes in a row one packet apart (188 bytes, or 204 for packets
///   followed by 16 Reed-Solomon bytes) lock at the first of them; bytes before are skipped.
///   A datagram that is a whole number of packets with a sync byte at the start of at least
///   half of them locks at its first byte: the datagram boundary is itself a packet boundary
///   (DVB-IPTV and SMPTE 2022-2 send seven aligned packets per datagram), so a datagram of
///   one packet needs no others to be read.
/// - **Locked.** Packets are read at every packet size. One missing sync byte between good
///   ones (or at the datagram's end, where nothing follows to say otherwise) is that
///   packet's sync byte error, and the lock holds; two in a row lose the lock (counted once,
///   as `syncLost`) and the search starts again at the first of them.
/// - **Across datagrams.** A packet cut by the end of a datagram is kept and completed with
///   the next datagram's first bytes, when the next sync bytes sit right after them. When
///   they do not (a datagram lost in between), or when the caller knows the next datagram does
///   not follow (an RTP sequence gap, the host's drops, a restart), the cut packet is
///   dropped — its bytes did not all arrive, so its PID's next counter shows the loss — and
///   the datagram is read from its own sync bytes. The packet size being known then, a
///   short datagram needs only a sync byte it does not contradict (see `start`).
///
/// Whether a datagram can be read is decided before anything moves (`start`), so a datagram
/// in which no lock can be found changes nothing. Per datagram the framer allocates nothing:
/// its one buffer, for the cut packet, is reserved once.
public struct TransportStreamFramer: Sendable {
  public static let syncByte: UInt8 = 0x47
  /// Plain packets, and packets with 16 Reed-Solomon bytes after them (DVB-C/T gateways).
  public static let packetSizes = [188, 204]
  /// The transport packet proper, without the Reed-Solomon bytes.
  public static let transportPacketSize = 188
  /// Sync bytes one packet apart a search needs before it locks.
  public static let syncsToLock = 3

  /// What reading a datagram brings.
  public enum Event: Sendable, Equatable {
    /// A whole packet's first 188 bytes. Its first byte is the sync byte, except for one
    /// corrupted between good ones (a sync byte error of that packet).
    case packet(ArraySlice<UInt8>)
    /// Two sync bytes missing in a row where the lock expected them: the lock is lost.
    case syncLost
  }

  /// Where reading a datagram starts.
  public enum Start: Sendable, Equatable {
    /// Its first bytes complete the packet the previous datagram cut; when that datagram
    /// only held candidates (`tentative`), the one at `skipping` bytes into them.
    case continuing(skipping: Int)
    /// Locked, but too short to show a packet of its own: its bytes from `offset` (a sync
    /// byte) are kept as candidates for the next datagram to confirm.
    case tentative(offset: Int)
    /// Locked, shorter than a packet and without a sync byte: the middle of a packet whose
    /// start was lost. Nothing to read in it, and nothing wrong with it.
    case fragment
    /// The lock holds: a packet starts at its first byte.
    case aligned
    /// A lock found at `offset`, with packets of `size` bytes.
    case lock(offset: Int, size: Int)
  }

  /// Where `next` is in the datagram being read.
  public struct Cursor: Sendable {
    fileprivate var start: Start?
    fileprivate var offset = 0
    fileprivate var clearPartial = false
  }

  /// The packet size locked on; nil while searching.
  public private(set) var packetSize: Int?
  /// The head of a packet the last datagram cut (it starts with the sync byte); empty when
  /// that datagram ended on a packet boundary.
  private var partial: [UInt8] = []
  /// `partial` holds candidates rather than a packet's head: the bytes of a short datagram
  /// after a break, from its first sync byte, any of whose sync bytes may start a packet.
  private var tentative = false

  public init() { partial.reserveCapacity(Self.packetSizes.max()!) }

  /// Bytes of a cut packet kept for the next datagram.
  public var partialCount: Int { partial.count }

  /// Forgets the lock and any cut packet: the next datagram is searched afresh (a restarted
  /// sender aligns its packets anew).
  public mutating func unlock() {
    packetSize = nil
    dropPartial()
  }

  /// Forgets a cut packet, keeping the lock: the next datagram does not continue this one
  /// (datagrams the host dropped came between).
  public mutating func dropPartial() {
    partial.removeAll(keepingCapacity: true)
    tentative = false
  }

  /// How reading `datagram` would start; nil when no lock can be found in it. `continues`:
  /// false when the datagram is known not to follow the previous one, so a cut packet is
  /// not completed with its bytes. Changes nothing.
  ///
  /// A datagram that breaks the stream (one lost before it, say) while the framer is locked
  /// may be too short to show three sync bytes (ffmpeg flushes datagrams of a few dozen
  /// bytes now and then). With the packet size known, a sync byte that the datagram does
  /// not contradict (every packet size further within it holds one too) is a lock when a
  /// whole packet follows it, and otherwise a candidate kept for the next datagram, which
  /// confirms one (with two sync bytes where the packet would continue) or none. One
  /// shorter than a packet without any sync byte is a piece of a packet whose start was
  /// lost (`fragment`); one of a packet or more without a sync byte is not the stream.
  public func start(of datagram: ArraySlice<UInt8>, continues: Bool = true) -> Start? {
    guard !datagram.isEmpty else { return nil }
    if let size = packetSize {
      if continues && !partial.isEmpty {
        var skip = 0
        while skip < partial.count {
          let need = size - (partial.count - skip)
          // A candidate needs the sync byte after it; a packet's head is completed as well
          // by a datagram that ends before its successor could start.
          if partial[skip] == Self.syncByte && (!tentative || datagram.count > need)
            && Self.continues(datagram, after: need, size: size)
          {
            return .continuing(skipping: skip)
          }
          guard tentative else { break }
          skip += 1
        }
      }
      if (!continues || partial.isEmpty || tentative) && Self.readsPacket(datagram, at: 0, size: size) { return .aligned }
      if let found = Self.acquire(datagram) { return .lock(offset: found.offset, size: found.size) }
      var offset = 0
      while offset < datagram.count {
        guard let index = datagram[(datagram.startIndex + offset)...].firstIndex(of: Self.syncByte) else { break }
        let candidate = index - datagram.startIndex
        var consistent = true
        var next = candidate + size
        while next < datagram.count {
          if datagram.byte(at: next) != Self.syncByte {
            consistent = false
            break
          }
          next += size
        }
        if consistent {
          return datagram.count - candidate >= size ? .lock(offset: candidate, size: size) : .tentative(offset: candidate)
        }
        offset = candidate + 1
      }
      return datagram.count < size ? .fragment : nil
    }
    return Self.acquire(datagram).map { .lock(offset: $0.offset, size: $0.size) }
  }

  /// Begins reading `datagram` from `start` (as `start(of:continues:)` gave it).
  public func cursor(from start: Start) -> Cursor { Cursor(start: start) }

  /// The next packet (or lost lock) of the datagram; nil once it is read to its end, a cut
  /// packet kept for the next one.
  public mutating func next(in datagram: ArraySlice<UInt8>, _ cursor: inout Cursor) -> Event? {
    if cursor.clearPartial {
      partial.removeAll(keepingCapacity: true)
      cursor.clearPartial = false
    }
    if let start = cursor.start {
      cursor.start = nil
      switch start {
      case .continuing(let skip):
        guard let size = packetSize else { break }
        if skip > 0 { partial.removeFirst(skip) }
        tentative = false
        let need = size - partial.count
        guard datagram.count >= need else {
          partial.append(contentsOf: datagram)
          cursor.offset = datagram.count
          return nil
        }
        partial.append(contentsOf: datagram.prefix(need))
        cursor.offset = need
        cursor.clearPartial = true
        return .packet(partial[0..<Self.transportPacketSize])
      case .aligned:
        dropPartial()
        cursor.offset = 0
      case .lock(let offset, let size):
        dropPartial()
        packetSize = size
        cursor.offset = offset
      case .fragment:
        dropPartial()
        cursor.offset = datagram.count
        return nil
      case .tentative(let offset):
        dropPartial()
        partial.append(contentsOf: datagram.dropFirst(offset))
        tentative = true
        cursor.offset = datagram.count
        return nil
      }
    }
    while cursor.offset < datagram.count {
      guard let size = packetSize else {
        guard let found = Self.search(datagram.dropFirst(cursor.offset)) else {
          cursor.offset = datagram.count
          return nil
        }
        cursor.offset += found.offset
        packetSize = found.size
        continue
      }
      let offset = cursor.offset
      let remaining = datagram.count - offset
      if datagram.byte(at: offset) == Self.syncByte && remaining < size {
        partial.append(contentsOf: datagram.suffix(remaining))
        cursor.offset = datagram.count
        return nil
      }
      guard Self.readsPacket(datagram, at: offset, size: size) else {
        packetSize = nil
        return .syncLost
      }
      cursor.offset += size
      return .packet(datagram.bytes(at: offset, count: Self.transportPacketSize))
    }
    return nil
  }

  /// True when `datagram` continues a cut packet that `need` bytes complete: it ends
  /// within them, or the next sync byte follows them (and, where the datagram holds it, the
  /// one after: a lost datagram's successor has a byte 0x47 at a given place one time in
  /// 256, at two one time in 65,536).
  private static func continues(_ datagram: ArraySlice<UInt8>, after need: Int, size: Int) -> Bool {
    guard datagram.count > need else { return true }
    guard datagram.byte(at: need) == syncByte else { return false }
    return need + size >= datagram.count || datagram.byte(at: need + size) == syncByte
  }

  /// True when the lock reads a packet (or the start of a cut one) at `offset`: its sync
  /// byte is there, or, for a whole packet, the next one is (or nothing follows).
  private static func readsPacket(_ datagram: ArraySlice<UInt8>, at offset: Int, size: Int) -> Bool {
    if datagram.byte(at: offset) == syncByte { return true }
    let next = offset + size
    return next <= datagram.count && (next == datagram.count || datagram.byte(at: next) == syncByte)
  }

  /// A lock in a datagram read from its start: the datagram's own framing, or a search.
  static func acquire(_ datagram: ArraySlice<UInt8>) -> (offset: Int, size: Int)? {
    for size in packetSizes where !datagram.isEmpty && datagram.count % size == 0 {
      let count = datagram.count / size
      var syncs = 0
      for index in 0..<count where datagram.byte(at: index * size) == syncByte { syncs += 1 }
      if syncs * 2 >= count { return (0, size) }
    }
    return search(datagram)
  }

  /// The first offset in `bytes` with `syncsToLock` sync bytes one packet apart, and the size.
  static func search(_ bytes: ArraySlice<UInt8>) -> (offset: Int, size: Int)? {
    var from = bytes.startIndex
    while let index = bytes[from...].firstIndex(of: syncByte) {
      for size in packetSizes where index + (syncsToLock - 1) * size < bytes.endIndex {
        var found = true
        for step in 1..<syncsToLock where bytes[index + step * size] != syncByte {
          found = false
          break
        }
        if found { return (index - bytes.startIndex, size) }
      }
      // Too close to the end for even the smallest packets: nothing further can lock.
      if index + (syncsToLock - 1) * packetSizes[0] >= bytes.endIndex { return nil }
      from = index + 1
    }
    return nil
  }
}
