import TailgateConfig

/// A table of per-source values that never grows: open-addressed in groups of 16 slots, a source living in
/// the group its keyed hash picks. The per-source limits (`SourceTracker`) and a ban rule's offense counts
/// (`OffenseTracker`) keep their sources in one each, so a flood of a million distinct sources costs them
/// no more memory than one source does. Not locked: its owner holds it in a `Mutex`.
struct SourceSlots<Value> {
    struct Slot {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var used = false
        var value: Value
    }

    /// How `claim` found a slot.
    enum Claim { case found, free, evicted }

    static var groupSize: Int { 16 }

    private var slots: [Slot]
    private let mask: Int
    private let seed: UInt64

    /// `capacity` slots, rounded up to a power of two and to at least one group.
    init(capacity: Int, empty: Value) {
        var size = Self.groupSize
        while size < capacity { size <<= 1 }
        slots = Array(repeating: Slot(value: empty), count: size)
        mask = size - 1
        seed = UInt64.random(in: 1...UInt64.max)
    }

    var capacity: Int { slots.count }

    subscript(index: Int) -> Value {
        get { slots[index].value }
        _modify { yield &slots[index].value }
    }

    /// The slot holding `key`, if it is in the table.
    func find(_ key: SourceKey) -> Int? {
        let start = group(of: key)
        for step in 0..<Self.groupSize {
            let index = (start &+ step) & mask
            if slots[index].used, slots[index].high == key.high, slots[index].low == key.low { return index }
        }
        return nil
    }

    /// The slot of `key`: its own, or a free one of its group, or else the one of a source that `mayGiveWay`
    /// allows and that is oldest by `age` (evicted). A new slot starts as `fresh`. Nil when no slot of the
    /// group may give way.
    mutating func claim(
        _ key: SourceKey, fresh: Value, mayGiveWay: (Value) -> Bool, age: (Value) -> Int64
    ) -> (index: Int, how: Claim)? {
        let start = group(of: key)
        var free: Int?
        var oldest: Int?
        for step in 0..<Self.groupSize {
            let index = (start &+ step) & mask
            let slot = slots[index]
            if !slot.used {
                if free == nil { free = index }
                continue
            }
            if slot.high == key.high, slot.low == key.low { return (index, .found) }
            if mayGiveWay(slot.value), oldest.map({ age(slot.value) < age(slots[$0].value) }) ?? true { oldest = index }
        }
        guard let index = free ?? oldest else { return nil }
        slots[index] = Slot(high: key.high, low: key.low, used: true, value: fresh)
        return (index, free == nil ? .evicted : .free)
    }

    /// A keyed mix of the source's bits (the seed is random per process, so that nobody can pick addresses
    /// that all fall in one group).
    private func group(of key: SourceKey) -> Int {
        var value = key.high ^ (key.low &* 0x9E37_79B9_7F4A_7C15) ^ seed
        value ^= value >> 33
        value &*= 0xFF51_AFD7_ED55_8CCD
        value ^= value >> 33
        value &*= 0xC4CE_B9FE_1A85_EC53
        value ^= value >> 33
        return Int(truncatingIfNeeded: value)
    }
}
