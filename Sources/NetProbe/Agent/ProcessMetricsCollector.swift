/// The process metrics of the Go client, read from /proc at each scrape.
public struct ProcessMetricsCollector: MetricsCollector {
  public init() {}

  public func collect(into exposition: inout Exposition) {
    guard let stats = ProcessStats.current() else { return }
    exposition.add(Catalogue.processCPU, .empty, stats.cpuSeconds)
    exposition.add(Catalogue.processResidentMemory, .empty, stats.residentMemoryBytes)
    exposition.add(Catalogue.processVirtualMemory, .empty, stats.virtualMemoryBytes)
    exposition.add(Catalogue.processOpenFDs, .empty, stats.openFileDescriptors)
    exposition.add(Catalogue.processMaxFDs, .empty, stats.maxFileDescriptors)
    exposition.add(Catalogue.processStartTime, .empty, stats.startTimeSeconds)
  }
}
