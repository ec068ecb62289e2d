import Testing
@testable import NetProbe

/// How many HTTP connections fit in the open-file limit: pure arithmetic on the limit,
/// what is open and what the configuration will open.
@Suite struct DescriptorBudgetTests {
  @Test func connectionsFitWhatTheOpenFileLimitLeaves() {
    let roomy = DescriptorBudget(requested: 512, softLimit: 1 << 20, openNow: 20, engineSockets: 8)
    #expect(roomy.connections == 512 && !roomy.lowered)
    let tight = DescriptorBudget(requested: 512, softLimit: 256, openNow: 20, engineSockets: 8)
    #expect(tight.reserved == 20 + 8 + DescriptorBudget.spare)
    #expect(tight.connections == 256 - tight.reserved && tight.lowered)
    #expect(DescriptorBudget(requested: 512, softLimit: 10, openNow: 20, engineSockets: 8).connections == 1)
  }

  @Test func engineSocketsFollowTheConfiguration() throws {
    var config = NetProbeConfig()
    #expect(DescriptorBudget.engineSockets(for: config) == 0)
    config.beacons = []
    config.querierWatch = QuerierWatchConfig(interfaces: ["eth0", "eth1"])
    #expect(DescriptorBudget.engineSockets(for: config) == 4)
  }
}
