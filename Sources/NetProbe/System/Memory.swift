import CNetShims

/// Returning freed heap memory to the kernel.
public enum Memory {
  /// Fixes glibc's mmap threshold at 1 MiB. Left dynamic, it rises to the size of the
  /// largest block freed (a 40 MB exposition), after which such blocks come from the heap
  /// and their pages stay resident; mmapped blocks go back to the kernel when freed.
  public static func useMmapForLargeBlocks() {
    _ = cns_set_mmap_threshold(1 << 20)
  }

  /// One malloc arena for every thread. glibc gives threads arenas of their own (up to
  /// eight per core) to spare them its lock; but here only a scrape allocates much, on the
  /// threads of its pipeline (collection, encoding, compression, the send), and with an
  /// arena each the pieces freed in one arena were reused only by that thread: the peak of
  /// a scrape of 10,000 targets was 8 MiB higher, and no scrape was faster for it.
  public static func useOneArena() {
    _ = cns_set_arena_max(1)
  }

  /// Wraps glibc's malloc_trim(3). A scrape of 10,000 targets builds a 40 MB exposition;
  /// glibc keeps the freed pages for reuse, so the resident size would stay at its peak.
  /// Trimming after large responses brings it back to the working set.
  public static func releaseFreePages() {
    _ = cns_malloc_trim(0)
  }
}
