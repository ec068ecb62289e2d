extension ConfigSchema {
  static let targetFilesKeys = ["files", "refresh_interval", "name_label", "max_targets_per_file", "max_targets"] + probeKeys

  /// The `target_files` entries: where the files are and what their targets inherit.
  static func targetFiles(_ items: [YAMLNode], defaults: ProbeOptions, _ reader: inout SchemaReader) -> [TargetFilesConfig] {
    var result: [TargetFilesConfig] = []
    var firstByPattern: [String: SourceLocation] = [:]
    for (index, item) in items.enumerated() {
      let path = "target_files[\(index)]"
      guard let map = reader.mapping(item, path, allowed: targetFilesKeys) else { continue }
      guard let filesNode = map["files"]?.value else {
        reader.error(item.location, "\(path) needs 'files': a list of paths such as /etc/netprobe/targets/*.json")
        continue
      }
      var files: [String] = []
      for node in reader.list(filesNode, "\(path).files") ?? [] {
        guard let pattern = reader.string(node) else { continue }
        guard TargetFilesConfig.isValidPattern(pattern) else {
          reader.error(
            node.location,
            "'\(ConfigValues.shown(pattern))' is not a target file path: expected a path ending in .json, .yml or .yaml, with at most one '*' in its last component (as in Prometheus' file_sd_configs)"
          )
          continue
        }
        if let first = firstByPattern[pattern] {
          reader.error(node.location, "'\(ConfigValues.shown(pattern))' is listed twice (first at \(first))")
          continue
        }
        firstByPattern[pattern] = node.location
        files.append(pattern)
      }
      if filesNode.sequence?.isEmpty ?? filesNode.scalar?.isNull ?? false {
        reader.error(filesNode.location, "\(path).files needs at least one path")
      }
      var entry = TargetFilesConfig(
        files: files, options: probeOptions(map, path, base: defaults, isTarget: true, &reader),
        location: item.location)
      if let v = map["refresh_interval"]?.value {
        entry.refreshInterval = reader.duration(v, min: .seconds(1), max: .seconds(86_400)) ?? entry.refreshInterval
      }
      if let v = map["name_label"]?.value, let name = reader.string(v) {
        if TargetFileReader.isFileLabelName(name) {
          entry.nameLabel = name
        } else {
          reader.error(v.location, "invalid label name '\(ConfigValues.shown(name))': expected [a-zA-Z_][a-zA-Z0-9_]*")
        }
      }
      if let v = map["max_targets_per_file"]?.value {
        entry.maxTargetsPerFile = reader.integer(v, 1...TargetFileReader.hardTargetLimit) ?? entry.maxTargetsPerFile
      }
      if let v = map["max_targets"]?.value {
        entry.maxTargets = reader.integer(v, 1...TargetFileReader.hardTargetLimit) ?? entry.maxTargets
      }
      if entry.maxTargetsPerFile > entry.maxTargets {
        reader.error(
          (map["max_targets_per_file"] ?? map["max_targets"])?.value.location ?? item.location,
          "max_targets_per_file (\(entry.maxTargetsPerFile)) exceeds max_targets (\(entry.maxTargets)), the limit of all files of this entry together"
        )
      }
      result.append(entry)
    }
    return result
  }
}
