import Foundation
import Logging
import Synchronization
import Testing
@testable import NetProbe

@Suite struct LogFormatTests {
  let time = Date(timeIntervalSince1970: 1_764_061_950.25)

  @Test func logfmtQuotesOnlyWhatNeedsIt() {
    let line = LineLogHandler.render(
      time: time, level: .warning, message: "reload failed",
      metadata: ["error": "a.yml:1:2: bad \"x\"", "targets": "3"], format: .logfmt)
    #expect(line == #"ts=2025-11-25T09:12:30.250Z level=warn msg="reload failed" error="a.yml:1:2: bad \"x\"" targets=3"# + "\n")
  }

  @Test func jsonEscapesEverything() throws {
    let line = LineLogHandler.render(
      time: time, level: .error, message: "two\nlines\u{1}",
      metadata: ["path": "C:\\x"], format: .json)
    #expect(line == #"{"ts":"2025-11-25T09:12:30.250Z","level":"error","msg":"two\nlines\u0001","path":"C:\\x"}"# + "\n")
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
    #expect(object?["msg"] == "two\nlines\u{1}")
    // Line separators and C1 controls too: a log shipper splitting on them breaks no line.
    #expect(LineLogHandler.jsonString("a\u{2028}b\u{85}") == #""a\u2028b\u0085""#)
  }

  @Test func filtersByLevelAndWritesWholeLines() {
    let lines = Mutex<[String]>([])
    var logger = Logger(label: "t") { label in
      LineLogHandler(label: label, level: .info, format: .logfmt) { bytes in
        lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
      }
    }
    logger[metadataKey: "component"] = "http"
    logger.debug("hidden")
    logger.info("shown", metadata: ["n": "1"])
    let captured = lines.withLock { $0 }
    #expect(captured.count == 1)
    #expect(captured.first?.hasSuffix(" level=info msg=shown component=http n=1\n") == true)
  }
}
