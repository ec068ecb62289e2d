import Testing
@testable import NetProbe

/// `ping.native_histograms`: off by default, on with `true` or a mapping, every bad value
/// named at its file:line:column.
@Suite struct NativeHistogramConfigTests {
  @Test func offByDefault() throws {
    #expect(try loadConfig("ping:\n  rtt_buckets: [0.001, 0.01]\n").get().ping.nativeHistograms == nil)
  }

  @Test func trueTurnsThemOnWithClientGolangDefaults() throws {
    let settings = try #require(try loadConfig("ping:\n  native_histograms: true\n").get().ping.nativeHistograms)
    #expect(settings == NativeHistogramSettings())
    #expect(settings.bucketFactor == 1.1 && settings.schema == 3 && settings.zeroThreshold == 0x1p-128 && settings.maxBuckets == 160)
    #expect(try loadConfig("ping:\n  native_histograms: false\n").get().ping.nativeHistograms == nil)
  }

  @Test func aMappingSetsAndTurnsOn() throws {
    let text = """
      ping:
        native_histograms:
          bucket_factor: 1.05
          zero_threshold: 0
          max_buckets: 80

      """
    let settings = try #require(try loadConfig(text).get().ping.nativeHistograms)
    #expect(settings.bucketFactor == 1.05 && settings.schema == 4 && settings.zeroThreshold == 0 && settings.maxBuckets == 80)
    let off = try loadConfig("ping:\n  native_histograms:\n    enabled: false\n    max_buckets: 10\n").get()
    #expect(off.ping.nativeHistograms == nil)
    // The RTT layout the engines build histograms from carries the settings.
    #expect(try loadConfig(text).get().ping.rttLayout.native == settings)
  }

  @Test func badValuesAreNamedWhereTheyAre() {
    let text = """
      ping:
        native_histograms:
          enabled: sometimes
          bucket_factor: 1
          zero_threshold: -0.5
          max_buckets: 1e9
          schema: 3

      """
    #expect(
      errorLines(text) == [
        "test.yml:3:14: expected true or false, got 'sometimes'",
        "test.yml:4:20: 1 out of range: expected a number above 1 and at most 65536",
        "test.yml:5:21: -0.5 out of range: expected a number above 0 and at most 1",
        "test.yml:6:18: expected an integer from 0 to 10000, got '1e9'",
        "test.yml:7:5: unknown key 'schema' in ping.native_histograms",
      ])
    #expect(errorLines("ping:\n  native_histograms: [1]\n").first?.hasPrefix("test.yml:2:22: ") == true)
  }
}
