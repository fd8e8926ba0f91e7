/// Rewrites a record's JSON object for an operator that forwards it changed (a join adds a
/// row's columns, pairs name the other item): the object without its members of some
/// fields, then new members before its closing brace. The result is decoded again with
/// the operator's own decoder, so downstream operators read it like any record.
enum RecordRewrite {
    /// Writes into `out` the JSON of `record` without its members of the fields `removing`
    /// (those it has), then `count` new members, each appended by `member(j, &out)` as
    /// `"name":value`. (The source decoder validated the object, so the scans below find
    /// what they look for.)
    static func rewrite(_ record: Record, removing: [Int], appending count: Int, into out: inout [UInt8],
                        member: (Int, inout [UInt8]) -> Void) {
        let bytes = record.value.bindMemory(to: UInt8.self)
        var end = bytes.count
        while end > 0 && isSpace(bytes[end - 1]) { end -= 1 }
        end -= 1  // the '}'
        // The members to leave out: from the key's opening quote to the value's end, with
        // the comma that joins the member to its neighbour.
        var cuts: [Range<Int>] = []
        for id in removing where record.fields.slots[id].kind != .absent {
            let value = record.fields.slots[id].jsonRange
            var p = value.lowerBound - 1
            while isSpace(bytes[p]) { p -= 1 }
            p -= 1  // ':'
            while isSpace(bytes[p]) { p -= 1 }
            // bytes[p] is the key's closing quote: find its opening one (not escaped).
            p -= 1
            while !(bytes[p] == UInt8(ascii: "\"") && isUnescaped(bytes, p)) { p -= 1 }
            var before = p - 1
            while isSpace(bytes[before]) { before -= 1 }
            if bytes[before] == UInt8(ascii: ",") {
                cuts.append(before..<value.upperBound)
            } else {  // the first member: take the comma after it instead, if any
                var after = value.upperBound
                while after < end && isSpace(bytes[after]) { after += 1 }
                cuts.append(p..<(after < end && bytes[after] == UInt8(ascii: ",") ? after + 1 : value.upperBound))
            }
        }
        cuts.sort { $0.lowerBound < $1.lowerBound }
        out.removeAll(keepingCapacity: true)
        var at = 0
        for cut in cuts {
            if cut.lowerBound > at { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[at..<cut.lowerBound])) }
            at = max(at, cut.upperBound)
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[at..<end]))
        // Leaving out the first two members leaves the comma that followed the second one
        // first: drop it.
        if let brace = out.firstIndex(of: UInt8(ascii: "{")), let next = out[(brace + 1)...].firstIndex(where: { !isSpace($0) }),
           out[next] == UInt8(ascii: ",") {
            out.remove(at: next)
        }
        var last = out.count
        while last > 0 && isSpace(out[last - 1]) { last -= 1 }
        var empty = last > 0 && out[last - 1] == UInt8(ascii: "{")
        for j in 0..<count {
            if !empty { out.append(UInt8(ascii: ",")) }
            empty = false
            member(j, &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    @inline(__always) private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }

    /// Whether the quote at `p` is not escaped (an even number of backslashes before it).
    private static func isUnescaped(_ bytes: UnsafeBufferPointer<UInt8>, _ p: Int) -> Bool {
        var backslashes = 0
        var q = p - 1
        while q >= 0 && bytes[q] == UInt8(ascii: "\\") { backslashes += 1; q -= 1 }
        return backslashes % 2 == 0
    }
}
