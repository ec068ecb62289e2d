/// Hands out the slots that a probe payload carries to name its target (`ProbePayload.slot`):
/// a number a removed target gave back, else the next never used. Reusing them keeps the
/// numbers dense across reloads: a slot also sets its target's phase in the schedule (a
/// golden-ratio step per slot), which spreads dense slots evenly, and the tracer marks its
/// slots with the top bit (`ProbePayload.traceSlotFlag`), which ever-growing numbers would
/// reach. The ping and path engines each keep one.
struct SlotAllocator: Sendable {
  private var free: [UInt32] = []
  private var next: UInt32 = 0

  /// A slot no current target holds: the one given back last, else a new one.
  mutating func take() -> UInt32 {
    if let slot = free.popLast() { return slot }
    defer { next += 1 }
    return next
  }

  /// Gives `slot` back once its target is gone, for the next `take`.
  mutating func release(_ slot: UInt32) {
    free.append(slot)
  }
}
