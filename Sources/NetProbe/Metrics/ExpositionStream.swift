import Synchronization

/// An exposition's body, made a piece at a time: the families are cut, in order, into
/// pieces of about `pieceBytes` (a piece is one or more runs of a family's samples), and
/// each piece is encoded when its turn comes.
///
/// Made inline (`encoders: 0`), a piece is encoded when the reader asks for it. With
/// encoder threads, piece k is encoded by thread k mod n, each a few pieces ahead, and the
/// reader takes them in order: at 10,000 targets the text encoding is most of a scrape's
/// work, and on two cores two threads took a text scrape from about 110 to 85 ms. Either
/// way a family's samples are let go once its last piece is written, and the body in
/// memory stays a few pieces.
public final class ExpositionStream: BodyStream, @unchecked Sendable {
  /// The pieces' target size: large enough that a piece costs few calls and system calls,
  /// small enough that the body in flight stays a few of them.
  public static let pieceBytes = 64 << 10
  /// Pieces each encoder thread makes ahead of the reader.
  static let depth = 3

  public let contentType: String
  /// The families, each released by whoever writes its last run.
  private let families: FamilyStore
  private let pieces: [Piece]
  private var nextPiece = 0
  /// Inline: the encoder and its buffer, used by the reader's thread (the buffer is left
  /// at its minimum with encoder threads, which have their own).
  private var encoder: any ExpositionEncoder
  private var writer: ByteWriter
  /// With encoder threads: each thread's finished pieces.
  private let queues: [PieceQueue]

  /// With encoder threads the pieces are made ahead of the reader already.
  public var isMadeAhead: Bool { !queues.isEmpty }

  init(families: [CollectedFamily], encoder: any ExpositionEncoder, encoders: Int = 0) {
    contentType = encoder.contentType
    self.encoder = encoder
    writer = ByteWriter(capacity: encoders > 0 ? 0 : Self.pieceBytes + 4096)
    pieces = Self.plan(families, for: encoder)
    self.families = FamilyStore(families, pieces: pieces)
    queues = (0..<max(0, encoders)).map { _ in PieceQueue(depth: Self.depth) }
    for (thread, queue) in queues.enumerated() {
      let pieces = self.pieces
      let store = self.families
      let workers = queues.count
      let prototype = encoder
      SystemThread.start(name: "exposition-\(thread)") {
        var encoder: any ExpositionEncoder = prototype
        var writer = ByteWriter(capacity: Self.pieceBytes + 4096)
        for index in stride(from: thread, to: pieces.count, by: workers) {
          guard queue.waitForRoom() else { return }
          store.encode(pieces, index, with: &encoder, into: &writer)
          queue.put(writer.take())
        }
      }
    }
  }

  deinit {
    for queue in queues { queue.cancel() }
  }

  /// The next piece, nil once all was given.
  public func next() -> [UInt8]? {
    guard nextPiece < pieces.count else { return nil }
    defer { nextPiece += 1 }
    if queues.isEmpty {
      families.encode(pieces, nextPiece, with: &encoder, into: &writer)
      return writer.take()
    }
    return queues[nextPiece % queues.count].take()
  }

  /// A piece: runs of samples of one or more families, in order.
  struct Piece: Sendable {
    var runs: [Run] = []
  }

  struct Run: Sendable {
    var family: Int
    var range: Range<Int>
  }

  /// Cuts the families into pieces of about `pieceBytes`, by the encoder's estimate of each
  /// sample's bytes (`ExpositionEncoder.estimatedBytes`).
  static func plan(_ families: [CollectedFamily], for encoder: any ExpositionEncoder) -> [Piece] {
    var pieces: [Piece] = []
    var current = Piece()
    var bytes = 0
    func cut(_ family: Int, _ start: Int, _ end: Int) {
      current.runs.append(Run(family: family, range: start..<end))
      pieces.append(current)
      current = Piece()
      bytes = 0
    }
    for (index, family) in families.enumerated() where family.count > 0 {
      let nameBytes = family.family.name.utf8.count
      var start = 0
      bytes += 2 * nameBytes + family.family.help.utf8.count + 32  // the head
      if family.family.type == .histogram {
        family.histograms.withUnsafeBufferPointer { samples in
          for sample in samples.indices {
            bytes += encoder.estimatedBytes(
              nameBytes: nameBytes, labelBytes: samples[sample].labels.protobufFieldsCount,
              buckets: samples[sample].histogram.bucketCounts.count, native: samples[sample].histogram.native != nil)
            if bytes >= pieceBytes {
              cut(index, start, sample + 1)
              start = sample + 1
            }
          }
        }
      } else {
        family.scalars.withUnsafeBufferPointer { samples in
          for sample in samples.indices {
            bytes += encoder.estimatedBytes(
              nameBytes: nameBytes, labelBytes: samples[sample].labels.protobufFieldsCount, buckets: nil, native: false)
            if bytes >= pieceBytes {
              cut(index, start, sample + 1)
              start = sample + 1
            }
          }
        }
      }
      if start < family.count { current.runs.append(Run(family: index, range: start..<family.count)) }
    }
    if !current.runs.isEmpty { pieces.append(current) }
    return pieces
  }
}

/// The families of a stream, shared by its encoder threads: each family is released when
/// its last run has been written, by whichever thread wrote it.
private final class FamilyStore: Sendable {
  private final class Shared: @unchecked Sendable {
    /// Read by the threads encoding the family's runs; set to nil only after all of them.
    var family: CollectedFamily?
    /// The runs not yet written.
    let remaining: Atomic<Int>

    init(_ family: CollectedFamily, runs: Int) {
      self.family = family
      remaining = Atomic(runs)
    }
  }
  private let families: [Shared]
  private let pieceCount: Int

  init(_ families: [CollectedFamily], pieces: [ExpositionStream.Piece]) {
    var runs = [Int](repeating: 0, count: families.count)
    for piece in pieces {
      for run in piece.runs { runs[run.family] += 1 }
    }
    self.families = zip(families, runs).map { Shared($0, runs: $1) }
    pieceCount = pieces.count
  }

  /// Writes piece `index` of `pieces`; the encoder's closing bytes after the last.
  func encode(_ pieces: [ExpositionStream.Piece], _ index: Int, with encoder: inout any ExpositionEncoder, into writer: inout ByteWriter) {
    for run in pieces[index].runs {
      let shared = families[run.family]
      if let family = shared.family { encoder.encode(family, run.range, into: &writer) }
      // The last run of the family: every other run's writer is done with it.
      if shared.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { shared.family = nil }
    }
    if index == pieceCount - 1 { encoder.finish(into: &writer) }
  }
}
