/// The target files side of the catalogue (`target_files`: targets other tools write).
extension Catalogue {
  // MARK: Target files (per file, as matched by the entry's pattern)

  public static let targetFileErrors = MetricFamily(
    "netprobe_target_file_errors_total", .counter,
    "Changes of a target file that could not be applied (it does not parse, a target is not a host, a duplicate target, a limit passed); its previous targets stay. Counted once per change, not per re-read.",
    labels: ["file"])

  public static let targetFileTargets = MetricFamily(
    "netprobe_target_file_targets", .gauge,
    "Targets a target file gives now (its previous ones while its current content is refused).",
    labels: ["file"])

  public static let targetFileLastRead = MetricFamily(
    "netprobe_target_file_last_read_timestamp_seconds", .gauge,
    "Unix time a target file was last read and its targets applied; absent until that happens once.",
    labels: ["file"])

  static let targetFileFamilies = [targetFileErrors, targetFileTargets, targetFileLastRead]
}
