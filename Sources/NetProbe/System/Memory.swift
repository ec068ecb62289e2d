import CNetShims

/// Returning freed heap memory to the kernel.
public enum Memory {
  /// Fixes glibc's mmap threshold at 1 MiB. Left dynamic, it rises to the size of the
  /// largest block freed (a 40 MB exposition), after which such blocks come from the heap
  /// and their pages stay resident; mmapped blocks go back to the kernel when freed.
  public static func useMmapForLargeBlocks() {
    _ = cns_set_mmap_threshold(1 << 20)
  }

  /// Wraps glibc's malloc_trim(3). A scrape of 10,000 targets builds a 40 MB exposition;
  /// glibc keeps the freed pages for reuse, so the resident size would stay at its peak.
  /// Trimming after large responses brings it back to the working set.
  public static func releaseFreePages() {
    _ = cns_malloc_trim(0)
  }
}
